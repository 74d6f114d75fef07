"""An import-linter contract its built-in types cannot express (a wildcard replaces only a
whole module name, never a `test_` prefix): no test module imports another test module.

A helper two test modules share lives in a helper module (tests/builders.py and the like), so
each test module can be read, moved or deleted on its own.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


def is_test_module(module: str) -> bool:
    return module.rpartition(".")[2].startswith("test_")


class TestModulesApart(Contract):
    """Configuration: `containers`, the packages whose test modules are checked."""

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        crossings: list[tuple[str, str, list[int]]] = []
        for container in self.containers:  # type: ignore[attr-defined]
            for importer in sorted(graph.find_descendants(container)):
                if not is_test_module(importer):
                    continue
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if is_test_module(imported):
                        details = graph.get_import_details(importer=importer, imported=imported)
                        lines = [detail["line_number"] for detail in details]
                        crossings.append((importer, imported, lines))
        return ContractCheck(kept=not crossings, metadata={"crossings": crossings})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["crossings"]:
            where = ", ".join(f"l.{line}" for line in lines)
            output.print_error(f"{importer} imports {imported} ({where})", bold=False)
            output.new_line()
