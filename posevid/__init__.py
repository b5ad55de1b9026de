"""posevid: DEKR bottom-up pose estimation with a ConvGRU carrying context across video frames."""

__version__ = "0.1.0"
