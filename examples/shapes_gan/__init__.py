"""An example of your own GAN for gansearch: ``model.arch: shapes_gan.nets:build`` (see nets.py)."""
