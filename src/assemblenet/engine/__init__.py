"""assemblenet.engine"""
