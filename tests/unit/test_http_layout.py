"""The HTTP apps' layout (issue 14): every route handler is a module-level function of an
APIRouter module, its state injected as a FastAPI dependency, never a function nested in an app
factory that closes over the state. Read with ``ast`` over services/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUTE_DECORATORS = frozenset({"get", "post", "put", "patch", "delete", "head", "options",
                              "api_route", "route", "websocket", "exception_handler"})


def _route_decorated(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for dec in fn.decorator_list:
        call = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(call, ast.Attribute) and call.attr in ROUTE_DECORATORS:
            return True
    return False


def nested_routes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of each route handler defined inside another function."""
    out = []
    for outer in ast.walk(tree):
        if isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(outer):
                if (inner is not outer and isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef)
                        and _route_decorated(inner)):
                    out.append((inner.lineno, f"{outer.name}.{inner.name}"))
    return out


def test_given_the_services_then_no_route_handler_is_nested_in_a_function() -> None:
    found = [f"{path.relative_to(ROOT)}:{line} {name}"
             for path in sorted((ROOT / "services").rglob("*.py"))
             for line, name in nested_routes(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []


def test_given_a_route_in_a_factory_then_it_is_found() -> None:
    factory = ("def make_app(settings):\n    app = FastAPI()\n\n"
               "    @app.get('/x')\n    async def x():\n        return settings\n")
    module_level = "router = APIRouter()\n\n@router.get('/x')\ndef x(web: Web):\n    return web\n"
    assert nested_routes(ast.parse(factory)) == [(5, "make_app.x")]
    assert nested_routes(ast.parse(module_level)) == []
