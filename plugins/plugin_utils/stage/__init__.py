# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Staging besides the weights: the serving image (serving_image.py) and the compiled kernel caches
(kernel_cache.py), for the roles of the same names. Both travel through the weights' broadcast."""
