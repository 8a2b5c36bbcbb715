"""Pricing and Greeks: Black-76, Barone-Adesi-Whaley American values, implied volatility."""
