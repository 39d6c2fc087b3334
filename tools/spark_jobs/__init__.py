"""Thin spark-submit entry points: each file calls one `flagship.<project>` job's argparse `main`."""
