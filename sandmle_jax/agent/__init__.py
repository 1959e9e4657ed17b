"""The SandMLE agent scaffold: prompts, Qwen3 chat tokens, action parsing, the ReAct loop and the
scripted reference agent. It talks to a `Policy`, never to a particular engine."""
