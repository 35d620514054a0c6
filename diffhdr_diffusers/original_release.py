"""Facts about the authors' DiffHDR release, kept free of heavy imports so the CLI can parse quickly."""

ORIGINAL_REPOSITORY = "https://github.com/huTao1030/DiffHDR-pytorch"
ORIGINAL_CHECKPOINT_NAME = "Hdr_ddpm3000000.pth.tar"
ORIGINAL_CHECKPOINT_URL = "https://drive.google.com/file/d/1UwmxS20GAzBtU5G6NRJAQADmIyCZPPDE/view"

# UNet weights a checkpoint holds: the live ones (what the authors' evaluation used) and the EMA shadow.
WEIGHT_CHOICES = ("live", "ema")
