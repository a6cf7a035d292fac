"""Self-supervised losses and metrics for slimmable pretraining.

Small pure functions: tensors in, tensors out.

Conventions shared by every function here:

* Losses return a **per-example** vector of shape `(batch,)`. The caller sums
  it and divides by the *global* batch size (`keras.losses` style reduction
  under `tf.distribute`: each replica contributes `sum(local) / global_batch`
  and the gradients are summed across replicas). The only scalar outputs are
  `group_regularization` (a weight penalty) and the monitoring metrics
  `alignment`, `uniformity` and `embedding_std`.
* Inputs may be float16 / bfloat16 / float32; they are cast to float32 first,
  and every output is float32 (softmax, log-softmax and norms are never
  computed in half precision).
* Everything is traceable by `tf.function(jit_compile=True)`: static shapes,
  no Python branching on tensor values. Branches only look at static
  properties (dtypes, static shapes, the number of replicas in sync).
* The math is `keras.ops` only. The one TensorFlow-specific piece, gathering
  negatives from every replica under `tf.distribute`, is
  `keras_slim/losses/_replicas.py`.
"""

from keras_slim.losses._replicas import gather_from_replicas
from keras_slim.losses._tensors import l2_normalize
from keras_slim.losses.contrastive import contrastive_accuracy
from keras_slim.losses.contrastive import contrastive_loss
from keras_slim.losses.contrastive import key_logits
from keras_slim.losses.contrastive import moco_logits
from keras_slim.losses.contrastive import nt_xent_v2
from keras_slim.losses.contrastive import simclr_logits
from keras_slim.losses.cosine import byol_loss
from keras_slim.losses.cosine import negative_cosine
from keras_slim.losses.distillation import distillation_loss
from keras_slim.losses.metrics import alignment
from keras_slim.losses.metrics import embedding_std
from keras_slim.losses.metrics import uniformity
from keras_slim.losses.regularization import group_regularization

# The momentum queue gathers its keys the same way (methods/_momentum.py).
_gather_from_replicas = gather_from_replicas

__all__ = [
    "alignment",
    "byol_loss",
    "contrastive_accuracy",
    "contrastive_loss",
    "distillation_loss",
    "embedding_std",
    "group_regularization",
    "key_logits",
    "l2_normalize",
    "moco_logits",
    "negative_cosine",
    "nt_xent_v2",
    "simclr_logits",
    "uniformity",
]
