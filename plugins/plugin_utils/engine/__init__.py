# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The engine contract: what each pinned SGLang/Dynamo release accepts (contract.py, over the generated
engines/catalogue/) and what the serving image on the trays says it holds (probe.py).
"""
