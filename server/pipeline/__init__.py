"""Pipelines over the engine: a detector's boxes as ROIs, test-time
augmentation, and child classifiers where their parent's class says so.

run.Pipeline is what the servicer calls; each stage is an ordinary engine
job, so its items batch with every other request for that model.
"""
