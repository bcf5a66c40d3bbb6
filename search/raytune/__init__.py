"""Ray behind one door: every module of gansearch that imports Ray lives in this package."""
