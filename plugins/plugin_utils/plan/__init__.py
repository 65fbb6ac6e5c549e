# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The plan: inventory groups + gb200_* variables -> every tray's validated launch spec.

A pipeline in one direction (build.py): inventory.py (topology) -> settings.py (typed variables) ->
the engine contract (../engine) -> rules.py (what SGLang, Dynamo or the hardware refuse) ->
flags.py (recipe order, overrides, placeholders) -> build.py (per-rank argv and containers, per-host
plans) -> render.py (plan.json and launch scripts). problems.py collects every problem; recipes.py
loads recipes/*.yml.
"""
