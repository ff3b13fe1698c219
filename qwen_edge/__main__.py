"""``python -m qwen_edge`` is the ``qwen-edge`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
