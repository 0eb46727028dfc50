"""The names each categorical switch takes, in a module without torch: alexlab.checks refuses a
misspelt one before anything is imported for a run (building a net imports seconds of torch),
and the layers, initializers and datamodules build from the same names."""

ACTIVATIONS = ("relu", "tanh", "abs_tanh", "sigmoid")  # model.activation
POOLS = ("overlapping", "plain")  # model.pool
LRN_VARIANTS = ("code", "printed")  # model.lrn, when on (models/layers.py says what each computes)
LRNS = (*LRN_VARIANTS, "off")
DROPOUT_SCALINGS = ("test", "train")  # model.dropout_scaling
INITS = ("paper", "kaiming", "torch")  # model.init
MEANS = ("image", "normalize")  # data.mean
LIGHTINGS = ("code", "printed")  # data.augment.lighting
