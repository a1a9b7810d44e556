"""No chapter feeds a loaded model inputs that were not moved to the model's device.

On a GPU, ``load_model`` puts the whole model on ``cuda:0`` with no hooks that move
inputs, and a tokenizer returns CPU tensors: a call with them fails. The rule, checked
on the code cells of every notebook (parsed with ``ast``, nothing is run):

* a *loaded model* is a name bound to ``load_model(...)``, ``load_merged(...)``, the
  model of ``load_for_inference(...)``, or ``X.from_pretrained(...)`` of a model class
  (``AutoModelForCausalLM``, ``PeftModel``...), possibly followed by ``.eval()``,
  ``.to(...)`` or ``.merge_and_unload()``;
* a *model call* is ``m(...)``, ``m.generate(...)`` or ``m.forward(...)`` of a loaded
  model ``m`` (or of such an expression written inline);
* each of its inputs (positional arguments, ``**`` mappings, and the keywords in
  :data:`TENSOR_KEYWORDS`) must be *moved*: a ``to_model_device(...)`` call, an item,
  attribute or method result of a moved value (``enc["input_ids"]``, ``ids.clone()``),
  or a name whose last binding before the call (in the notebook's order) is moved.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import code_sources

from ift_tutorial.paths import PROJECT_ROOT

CHAPTERS = sorted((PROJECT_ROOT / "book" / "chapters").glob("*.ipynb")) if PROJECT_ROOT else []
LOADERS = {"load_model", "load_merged"}
MODEL_METHODS = {"eval", "to", "merge_and_unload", "cuda", "train"}
CALL_METHODS = {"generate", "forward"}
TENSOR_KEYWORDS = {"input_ids", "attention_mask", "labels", "position_ids", "inputs_embeds",
                   "token_type_ids", "pixel_values", "decoder_input_ids"}
HELPER = "to_model_device"


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


Binding = tuple[int, "ast.AST | None"]  # (line, value); None: a value that cannot be read


def _bindings(tree: ast.Module) -> dict[str, list[Binding]]:
    """Every value each name is bound to, with the line of the binding."""
    out: dict[str, list[Binding]] = {}

    def bind(target: ast.AST, value: ast.AST | None, index: int | None = None) -> None:
        if isinstance(target, ast.Name):
            if index is not None:  # a, b = f(): element `index` of f()'s result
                value = ast.Subscript(value=value, slice=ast.Constant(index)) if value else None
            out.setdefault(target.id, []).append((target.lineno, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for i, elt in enumerate(target.elts):
                bind(elt, value, i)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                bind(t, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            bind(node.target, node.value if isinstance(node, ast.AnnAssign) else None)
        elif isinstance(node, (ast.For, ast.comprehension)):
            bind(node.target, None)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            bind(node.optional_vars, None)
        elif isinstance(node, ast.arguments):
            for a in node.args + node.kwonlyargs + node.posonlyargs:
                out.setdefault(a.arg, []).append((a.lineno, None))
    return {name: sorted(values, key=lambda b: b[0]) for name, values in out.items()}


class Checker:
    def __init__(self, tree: ast.Module) -> None:
        self.bindings = _bindings(tree)
        self.models = {n for n, values in self.bindings.items()
                       if any(v is not None and self.is_model(v, set()) for _, v in values)}

    def is_model(self, node: ast.AST, seen: set[str]) -> bool:
        if isinstance(node, ast.Name):
            if node.id in seen:
                return False
            return any(v is not None and self.is_model(v, seen | {node.id})
                       for _, v in self.bindings.get(node.id, []))
        if isinstance(node, ast.Subscript):  # load_for_inference(...)[0]: the model
            inner = node.value
            return (isinstance(inner, ast.Call) and _name(inner.func) == "load_for_inference"
                    and isinstance(node.slice, ast.Constant) and node.slice.value == 0)
        if isinstance(node, ast.Call):
            f = node.func
            if _name(f) in LOADERS:
                return True
            if isinstance(f, ast.Attribute) and f.attr == "from_pretrained":
                owner = _name(f.value) or ""
                return owner.endswith("Model") or "ForCausalLM" in owner or owner.startswith("AutoModel")
            if isinstance(f, ast.Attribute) and f.attr in MODEL_METHODS:
                return self.is_model(f.value, seen)
        return False

    def is_moved(self, node: ast.AST, line: int, seen: frozenset[str] = frozenset()) -> bool:
        """Whether ``node``, used at ``line``, is on the model's device."""
        if isinstance(node, ast.Call):
            if _name(node.func) == HELPER:
                return True
            return isinstance(node.func, ast.Attribute) and self.is_moved(node.func.value, line, seen)
        if isinstance(node, (ast.Subscript, ast.Attribute)):
            return self.is_moved(node.value, line, seen)
        if isinstance(node, ast.Name):
            before = [(n, v) for n, v in self.bindings.get(node.id, []) if n < line]
            if node.id in seen or not before:
                return False
            bound_at, value = before[-1]
            return value is not None and self.is_moved(value, bound_at, seen | {node.id})
        return False

    def unmoved_inputs(self, tree: ast.Module) -> list[str]:
        problems = []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            callee = f.value if (isinstance(f, ast.Attribute) and f.attr in CALL_METHODS) else f
            if not (self.is_model(callee, set()) or (isinstance(callee, ast.Name) and callee.id in self.models)):
                continue
            inputs = list(node.args) + [k.value for k in node.keywords
                                        if k.arg is None or k.arg in TENSOR_KEYWORDS]
            for arg in inputs:
                if not self.is_moved(arg, node.lineno):
                    problems.append(f"line {node.lineno}: {ast.unparse(node)[:90]} -- "
                                    f"{ast.unparse(arg)[:40]} not moved with {HELPER}")
        return problems


def notebook_source(path: Path) -> str:
    """The code cells of a notebook as one module (IPython magics and shell lines left out)."""
    cells = code_sources(path)
    lines = [ln for cell in cells for ln in cell.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def check(source: str) -> list[str]:
    tree = ast.parse(source)
    return Checker(tree).unmoved_inputs(tree)


@pytest.mark.skipif(not CHAPTERS, reason="the notebooks are in the checkout, not in the wheel")
@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_model_calls_take_moved_inputs(notebook):
    assert check(notebook_source(notebook)) == []


def test_the_rule_catches_unmoved_inputs():
    bad = """
model, tokenizer = load_for_inference(config)
enc = tokenizer(["a"], return_tensors="pt")
model(**enc)
model.generate(enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=4)
merged = AutoModelForCausalLM.from_pretrained(path).eval()
ids = torch.tensor([[1, 2]])
merged(ids, labels=ids)
load_for_inference(config)[0](input_ids=ids)
enc = to_model_device(enc, model)
enc = tokenizer(["b"], return_tensors="pt")  # the last binding before the call counts
model(**enc)
"""
    problems = check(bad)
    assert len(problems) == 7, problems  # **enc twice; input_ids and mask; ids twice; input_ids=ids

    good = """
model, tokenizer = load_for_inference(config)
enc = to_model_device(tokenizer(["a"], return_tensors="pt"), model)
model(**enc)
model.generate(enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=4,
               pad_token_id=tokenizer.pad_token_id)
ids = to_model_device(torch.tensor([[1, 2]]), model)
changed = ids.clone()
model(changed, labels=ids)
teaching = EncoderDecoder(d_model=8)
teaching(torch.zeros(1, 3))  # built in the notebook, never placed on a GPU: not a loaded model
"""
    assert check(good) == []
