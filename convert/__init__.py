"""HF -> MLX conversion and quantization, installed as `mlx_lfm2.convert`."""
