"""The seven smart-home tools of the demo (``qwen_edge.demo.home_tools``), for the examples.

qwen-edge-tiny, the model shipped with qwen-edge, was trained on exactly these signatures.
Run ``python examples/home_tools.py`` to see one call of each tool.
"""

from qwen_edge.demo.home_tools import (  # noqa: F401
    TOOLS,
    add_reminder,
    calculate,
    convert_units,
    get_weather,
    set_lights,
    set_thermostat,
    set_timer,
)

if __name__ == "__main__":
    from qwen_edge.demo.home_tools import show

    show()
