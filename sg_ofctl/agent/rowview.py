"""A fast, read-only view of a python-ovs IDL row.

python-ovs decodes a set column on every attribute read by re-encoding it
(`Row.__getattr__`: as_list, from_python, to_python): ~60 % of the agent's
first sync went there.  `RowView(row, tables)` answers the same attribute
reads with the same values (sets sorted, references as the rows held,
references to rows not held left out) straight from the row's datums; the
converters in ovsdb/convert.py take it in place of the row."""
from __future__ import annotations


class RowView:
    __slots__ = ("_row", "_tables")

    def __init__(self, row, tables):
        self._row, self._tables = row, tables

    @property
    def uuid(self):
        return self._row.uuid

    def __getattr__(self, name):
        row = self._row
        datum = row._data.get(name) if row._data is not None else None
        if datum is None or row._changes:
            return getattr(row, name)
        kind = datum.type
        ref = kind.key.ref_table_name
        if kind.value is not None:                         # a map
            if ref or kind.value.ref_table_name:
                return getattr(row, name)
            return {k.value: v.value for k, v in datum.values.items()}
        if kind.n_min == 1 and kind.n_max == 1:            # a scalar
            if len(datum.values) != 1:
                return getattr(row, name)
            value = next(iter(datum.values)).value
            return self._tables[ref].rows.get(value) if ref else value
        values = [k.value for k in datum.values]
        if ref:
            rows = self._tables[ref].rows
            held = [rows.get(u) for u in values]
            return sorted(r for r in held if r is not None)
        return sorted(values)
