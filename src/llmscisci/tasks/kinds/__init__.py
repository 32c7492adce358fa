"""The built-in task kinds, one module each (label, baseline, extract, judge); see tasks/base.py for the
contract and tasks/registry.py for the table that names them."""
