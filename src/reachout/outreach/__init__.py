"""First messages: a greeting that opens a conversation, or a send through a use case."""
