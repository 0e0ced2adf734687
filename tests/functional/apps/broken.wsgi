raise RuntimeError("this script cannot be loaded")
