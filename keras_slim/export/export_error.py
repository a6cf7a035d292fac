"""The error of an export whose files failed conversion or verification."""


class ExportError(RuntimeError):
    """Some exported files failed; the manifest says which and why.

    Args:
        failures: list of readable strings, one per failed check.
        manifest_path: the manifest written with `"verified": false`.
    """

    def __init__(self, failures, manifest_path):
        self.failures = list(failures)
        self.manifest_path = manifest_path
        listed = "\n".join(f"  - {failure}" for failure in self.failures)
        super().__init__(
            f"{len(self.failures)} exported file check(s) failed (details in "
            f"{manifest_path}):\n{listed}")
