"""The demo: qwen-edge-tiny's seven smart-home tools and the scripted ``qwen-edge demo``."""
