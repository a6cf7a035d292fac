"""Every docstring example of keras_slim's public API runs as written.

The public API is what keras_slim exports: the names in the `__all__` of
each public module and package (a module without `__all__`: the classes
and functions it defines), and the public methods those classes define.
The `Example:` section of each docstring holds fenced ```python blocks;
each block runs on its own, in a fresh namespace, so it must import what it
uses. Checked claims are `assert`s inside the examples.
"""

import importlib
import inspect
import pkgutil
import re
import textwrap

import pytest

import keras_slim

_SECTION = re.compile(r"^(\s*)Examples?:\s*$")
_HEADER = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_FENCE = re.compile(r"^\s*```python\s*\n(.*?)^\s*```\s*$", re.M | re.S)


def _public_modules():
    yield keras_slim
    for info in pkgutil.walk_packages(keras_slim.__path__, "keras_slim."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def _exported(module):
    names = getattr(module, "__all__", None)
    if names is not None:
        return [getattr(module, name) for name in names]
    return [value for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(value) or inspect.isfunction(value))
            and value.__module__ == module.__name__]


def _public_api():
    """`{qualified name: class or function}` keras_slim exports."""
    found = {}
    for module in _public_modules():
        for value in _exported(module):
            if not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if not value.__module__.startswith("keras_slim"):
                continue
            found[f"{value.__module__}.{value.__qualname__}"] = value
            if inspect.isclass(value):
                found.update(_public_methods(value))
    return found


def _public_methods(cls):
    """The public functions defined in `cls` itself (not ones merely
    stored on it, e.g. a loader set as a class attribute)."""
    methods = {}
    for name, member in vars(cls).items():
        member = getattr(member, "__func__", member)
        if (not name.startswith("_") and inspect.isfunction(member)
                and member.__qualname__ == f"{cls.__qualname__}.{name}"):
            methods[f"{cls.__module__}.{member.__qualname__}"] = member
    return methods


def example_section(docstring):
    """The lines of a docstring's `Example:` section, or None."""
    lines = inspect.cleandoc(docstring or "").splitlines()
    for start, line in enumerate(lines):
        match = _SECTION.match(line)
        if match is None:
            continue
        indent = len(match.group(1))
        section = []
        for later in lines[start + 1:]:
            if (_HEADER.match(later) and later.strip()
                    and len(later) - len(later.lstrip()) <= indent):
                break
            section.append(later)
        return "\n".join(section) + "\n"
    return None


def _examples():
    examples = {}
    for name, value in sorted(_public_api().items()):
        # The object's own docstring: inspect.getdoc would fall back to a
        # base class's (e.g. keras.Model.compile's example).
        section = example_section(value.__doc__)
        if section is not None:
            blocks = [textwrap.dedent(block)
                      for block in _FENCE.findall(section)]
            examples[name] = blocks
    return examples


EXAMPLES = _examples()
BLOCKS = [(name, i, block) for name, blocks in EXAMPLES.items()
          for i, block in enumerate(blocks)]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_section_is_python_code(name):
    assert EXAMPLES[name], (
        f"The Example section of {name} has no ```python block: write the "
        f"example as fenced code (imports included) so that it runs here.")


@pytest.mark.parametrize(
    "name,index,block", BLOCKS,
    ids=[f"{name}[{index}]" for name, index, _ in BLOCKS])
def test_docstring_example_runs(name, index, block):
    code = compile(block, f"<example {index} of {name}>", "exec")
    exec(code, {"__name__": f"example_{index}"})  # a fresh namespace


def test_the_public_api_is_found_and_has_examples():
    # Guards the collection itself: a walk that found nothing would pass.
    api = _public_api()
    assert "keras_slim.width.Widths" in api
    assert "keras_slim.losses.contrastive.contrastive_loss" in api
    assert "keras_slim.export.exporter.export_backbone" in EXAMPLES
    assert len(BLOCKS) >= 30


def test_an_example_section_ends_at_the_next_section():
    doc = '''Summary.

    Example:

    ```python
    x = 1
    ```

    References:
        - a paper
    '''
    section = example_section(doc)
    assert _FENCE.findall(section) == ["x = 1\n"]
    assert "paper" not in section
    assert example_section("No example here.") is None
