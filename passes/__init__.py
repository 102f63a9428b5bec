"""Schedule transformations (IR -> IR), each checked against the isl dependences."""
