"""Chat templates for the rendering tests.

LFM25_STYLE is written for these tests in the manner of the LFM2.5 templates: tools listed
without the tool-list tokens, `{% generation %}` blocks, `strftime_now`, `thinking` fields and
`keep_past_thinking`.
"""

LFM25_STYLE = """{{- bos_token -}}
{%- set keep_past_thinking = keep_past_thinking | default(false) -%}
{%- set ns = namespace(system="", last_user=-1) -%}
{%- for message in messages -%}
    {%- if message["role"] == "user" -%}{%- set ns.last_user = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{%- if messages and messages[0]["role"] == "system" -%}
    {%- set ns.system = messages[0]["content"] -%}
    {%- set messages = messages[1:] -%}
    {%- set ns.last_user = ns.last_user - 1 -%}
{%- endif -%}
{{- "<|im_start|>system\\nToday is " + strftime_now("%Y-%m-%d") + "." -}}
{%- if ns.system -%}{{- "\\n" + ns.system -}}{%- endif -%}
{%- if tools -%}
    {{- "\\nYou can call these tools:\\n" -}}
    {%- for tool in tools -%}{{- (tool if tool is string else tool | tojson) + "\\n" -}}{%- endfor -%}
{%- endif -%}
{{- "<|im_end|>\\n" -}}
{%- for message in messages -%}
    {{- "<|im_start|>" + message["role"] + "\\n" -}}
    {%- set content = message["content"] if message["content"] is string else message["content"] | tojson -%}
    {%- if message["role"] == "assistant" -%}
        {%- generation -%}
        {%- if message.get("thinking") and (keep_past_thinking or loop.index0 > ns.last_user) -%}
            {{- "<think>" + message["thinking"] + "</think>" -}}
        {%- endif -%}
        {{- content + "<|im_end|>\\n" -}}
        {%- endgeneration -%}
    {%- elif message["role"] == "tool" -%}
        {{- "<|tool_response_start|>" + content + "<|tool_response_end|><|im_end|>\\n" -}}
    {%- else -%}
        {{- content + "<|im_end|>\\n" -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "<|im_start|>assistant\\n" -}}{%- endif -%}
"""
