"""assemblenet.compat"""
