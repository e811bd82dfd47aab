"""Custom ops of LFM2's hybrid block. Each module holds the plain-MLX reference (the
definition of correct) first, then the faster bodies and the dispatch between them."""
