# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False, language_level=3
"""The same kernel compiled for x86-64-v3 (AVX2 + FMA): setup.py builds it
on x86-64 only, and roiclass.ext imports it only where the CPU has both."""
include "_preprocess.pyx"
