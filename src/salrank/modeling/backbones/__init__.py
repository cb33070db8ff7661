"""Backbone networks shared by the models (Swin, ResNet, VoVNet, EfficientNet-Lite)."""
