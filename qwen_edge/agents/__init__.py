"""Tool calling: the agent loop (``agent``), ``@tool`` and schemas (``tools``, ``signature``,
``schema``), permissions and the audit log. The generation of calls is the core chat path
(``qwen_edge.chat_api`` over ``qwen_edge.tool_formats``); this package only runs them."""
