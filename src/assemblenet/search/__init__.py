"""assemblenet.search"""
