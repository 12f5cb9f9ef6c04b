"""VMA flag changes and tests: vm_flags_*() calls and `vma->vm_flags & VM_X`.

Masks map to bits through rules/flags.toml; the helper names come from the
API level (rules/api.toml). A test is rewritten only where its value is used
as a truth value, since the helpers return bool, not the masked bits.
"""
from __future__ import annotations

from ..rules_data import load
from ..style import wrap
from . import Context, call_args, call_name, unwrap, fill, render, rewrite
from .fields import vma_field

_FLAGS = load("flags")
_BOOLEAN_PARENTS = {"if_statement", "while_statement", "do_statement", "for_statement",
                    "conditional_expression", "parenthesized_expression"}


def _mask_names(ctx: Context, node) -> list[str] | None:
    """The VM_* names OR-ed together in `node`, or None when it is anything else (iterative: input can nest deep)."""
    names, stack = [], [node]
    while stack:
        node = stack.pop()
        if node.type == "parenthesized_expression" and node.named_children:
            stack.append(node.named_children[0])
        elif node.type == "identifier":
            names.append(ctx.src.text(node))
        elif node.type == "binary_expression" and ctx.src.text(node.child_by_field_name("operator")) == "|":
            stack += [node.child_by_field_name("right"), node.child_by_field_name("left")]
        else:
            return None
    return names


def flag_args(ctx: Context, node) -> tuple[str, str]:
    """("bits" | "mask", argument text) for a VM_* mask expression at the chosen API level."""
    names = _mask_names(ctx, node)
    if names is None:
        ctx.refuse(node, f"flag mask `{ctx.src.text(node)}` is not a list of VM_* names")
    if ctx.api["flag_style"] == "mask":
        return "bits", " | ".join(names)
    if all(n in _FLAGS["bits"] for n in names):
        return "bits", ", ".join(_FLAGS["bits"][n] for n in names)
    if len(names) == 1 and names[0] in _FLAGS["masks"]:
        return "mask", _FLAGS["masks"][names[0]]
    unknown = [n for n in names if n not in _FLAGS["bits"]]
    ctx.refuse(node, f"no VMA_*_BIT for {', '.join(unknown)} (or a composite mixed with bits)")


def _values(args: str) -> dict[str, str]:
    return {"ARGS": args, "MASK": f"({args})" if " | " in args else args}


def _helper(ctx: Context, which: str, node, statement) -> str:
    kind, args = flag_args(ctx, node)
    template = ctx.api[f"{which}_{'mask' if kind == 'mask' else 'flags'}"]
    return wrap(ctx.src.indent(statement), fill(template, ctx, _values(args)))


@rewrite
def flag_call(ctx: Context, node) -> str | None:
    name = call_name(ctx, node)
    if name not in ("vm_flags_set", "vm_flags_clear", "vm_flags_mod"):
        return None
    args = call_args(node)
    if not args or not ctx.is_vma(args[0]):
        ctx.refuse(node, f"{name}() on a vma other than the one being mapped")
    if len(args) != (3 if name == "vm_flags_mod" else 2):
        ctx.refuse(node, f"{name}() with {len(args)} arguments")
    statement = node.parent
    if name == "vm_flags_set":
        return _helper(ctx, "set", args[1], statement)
    if name == "vm_flags_clear":
        return _helper(ctx, "clear", args[1], statement)
    if statement.type != "expression_statement":
        ctx.refuse(node, "vm_flags_mod() used as a value")
    indent = ctx.src.indent(statement)
    parts = [_helper(ctx, which, arg, statement) for which, arg in (("set", args[1]), ("clear", args[2]))
             if ctx.src.text(arg).strip() not in ("0", "0UL")]
    return f";\n{indent}".join(parts)


def _flags_and(ctx: Context, node):
    """The mask of `vma->vm_flags & MASK` (either order), or None."""
    node = unwrap(node)
    if node is None or node.type != "binary_expression" or ctx.src.text(node.child_by_field_name("operator")) != "&":
        return None
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if vma_field(ctx, left) == "vm_flags":
        return right
    if vma_field(ctx, right) == "vm_flags":
        return left
    return None


def _boolean_context(ctx: Context, node) -> bool:
    outer = node.parent
    while outer is not None and outer.type == "parenthesized_expression" and outer.parent is not None \
            and outer.parent.type == "parenthesized_expression":
        outer = outer.parent
    if outer is None:
        return False
    if outer.type == "parenthesized_expression":
        return outer.parent is not None and outer.parent.type in _BOOLEAN_PARENTS - {"parenthesized_expression"} \
            or _boolean_context(ctx, outer)
    if outer.type == "init_declarator" and outer.parent is not None and outer.parent.type == "declaration":
        # `bool rw = vma->vm_flags & VM_WRITE;` converts the value to true/false.
        type_node = outer.parent.child_by_field_name("type")
        return type_node is not None and ctx.src.text(type_node) in ("bool", "_Bool")
    if outer.type in _BOOLEAN_PARENTS:
        return outer.type != "conditional_expression" or outer.child_by_field_name("condition") == node
    op = outer.child_by_field_name("operator")
    return op is not None and (outer.type == "unary_expression" and ctx.src.text(op) == "!"
                               or outer.type == "binary_expression" and ctx.src.text(op) in ("&&", "||"))


@rewrite
def parenthesized_flag_test(ctx: Context, node) -> str | None:
    """`!(vma->vm_flags & VM_X)` reads `!vma_desc_test(...)`: the call needs no parentheses."""
    if node.type != "parenthesized_expression" or node.parent is None or ctx.api["flag_style"] != "bits":
        return None
    op = node.parent.child_by_field_name("operator")
    if op is None or ctx.src.text(op) not in ("!", "&&", "||"):
        return None
    inner = node.named_children[0] if node.named_children else None
    if inner is None or inner.type != "binary_expression" or _flags_and(ctx, inner) is None:
        return None
    return render(ctx, inner)


@rewrite
def flag_test(ctx: Context, node) -> str | None:
    if node.type != "binary_expression":
        return None
    op = ctx.src.text(node.child_by_field_name("operator"))
    zero = ctx.src.text(node.child_by_field_name("right")).strip() in ("0", "0UL")
    if op in ("==", "!=") and zero and ctx.api["flag_style"] == "bits":
        # `(vma->vm_flags & M) == 0` is `!test(M)`, `!= 0` is `test(M)`: a truth value either way.
        mask = _flags_and(ctx, node.child_by_field_name("left"))
        names = _mask_names(ctx, mask) if mask is not None else None
        if not names:
            return None
        test = ctx.api["test_one" if len(names) == 1 else "test_any"]
        kind, args = flag_args(ctx, mask)
        if kind == "mask":
            ctx.refuse(node, "a composite mask in a flag test")
        return ("!" if op == "==" else "") + fill(test, ctx, _values(args))
    if op in ("==", "!="):
        mask = _flags_and(ctx, node.child_by_field_name("left"))
        names = _mask_names(ctx, mask) if mask is not None else None
        if not names or len(names) < 2 or _mask_names(ctx, node.child_by_field_name("right")) != names:
            return None
        which = "test_all" if op == "==" else "test_not_all"
    elif op == "&":
        mask = _flags_and(ctx, node)
        if mask is None:
            return None
        names = _mask_names(ctx, mask)
        which = "test_one" if names is not None and len(names) == 1 else "test_any"
    else:
        return None
    if not _boolean_context(ctx, node):
        ctx.refuse(node, "a flag test whose value is used as a number, not as true/false")
    template = ctx.api[which]
    if not template:
        ctx.refuse(node, f"API {ctx.level} has no helper for an all-of flag test")
    kind, args = flag_args(ctx, mask)
    if kind == "mask":
        ctx.refuse(node, "a composite mask in a flag test")
    return fill(template, ctx, _values(args))
