"""Data sources (MovieLens, Amazon, Taobao, synthetic) and the one input pipeline."""
