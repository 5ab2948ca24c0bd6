"""The machinery beneath the lesson: what keeps a run safe (run folders, checkpoints, exact resume, one-line
errors) and fast (backends, devices, the fused step), the presets, and the judge that scores a generator.

The lesson's scripts at the kit's top (dcgan.py, models.py, data.py, viz.py, ...) import these modules by
name; nothing here is needed to understand how a GAN trains. Importing the package imports no Keras: the
backend is chosen first (backends.use), and Keras picks it once, at its first import.
"""
