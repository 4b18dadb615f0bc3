"""OpenMMLab config files read without mmengine and without executing them."""
