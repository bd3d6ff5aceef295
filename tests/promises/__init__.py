"""The data promises stated as checks (checks.py), run on the code as it is and under mutations that break them."""
