"""The fraud model: train and test with the handbook's time protocol, calibrate, explain, save,
and score one event online.

Modules import LightGBM and scikit-learn themselves; importing this package stays light so the
CLI starts fast.
"""
