"""Output formats, one module per format.

Findings of `lint` and `check-patch` go through `findings.write(report, fmt)`
in one of FINDING_FORMATS; `scan_formats` renders scan results.
"""
