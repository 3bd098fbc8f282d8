"""The package's architecture as a test: modules in layers, each importing only from its own layer or those below,
no import cycle, and README's module map naming every module."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rotnet_repro"

# lowest first; a module may import from its own layer and the layers before it
LAYERS = {
    "base": ["errors", "files"],
    "core": ["config", "models", "data", "stats", "pretext", "cost", "engine", "rundir", "features", "views", "probes", "train"],
    "protocol": ["weights", "experiments", "results", "records", "runner", "pretrained"],
    "analysis": ["claims", "tables", "verdicts", "report", "plots", "notebook"],
    "operations": ["bench", "planner", "publish", "window", "cluster", "request", "cli", "__main__"],
}
LEVEL = {m: i for i, mods in enumerate(LAYERS.values()) for m in mods}


def imports() -> dict[str, set[str]]:
    """Each module's imports of the package's modules, at module level and inside functions alike."""
    graph = {}
    for f in sorted(PACKAGE.glob("*.py")):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[f.stem] = deps
    return graph


def test_every_module_has_a_layer():
    assert set(imports()) - {"__init__"} == set(LEVEL)  # __init__: the face, names imported on first use


def test_imports_point_down_and_never_up():
    up = sorted(f"{m} ({LAYERS_OF(m)}) imports {d} ({LAYERS_OF(d)})" for m, deps in imports().items() if m in LEVEL
                for d in deps if LEVEL[d] > LEVEL[m])
    assert not up, up


def LAYERS_OF(m: str) -> str:
    return list(LAYERS)[LEVEL[m]]


def test_no_import_cycle():
    graph = imports()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for d in graph.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    cycles = sorted({tuple(sorted((m, d))) for m, deps in graph.items() for d in deps if m in reach(d)})
    assert not cycles, cycles


def test_readme_module_map_names_every_module_in_its_layer():
    readme = (PACKAGE.parent / "README.md").read_text()
    start = readme.index("The package, `rotnet_repro/`")
    block = readme[start:readme.index("\n\n", start)]
    items = {x.split(":", 1)[0]: x for x in block.split("\n- ")[1:]}  # "layer: its modules, over several lines"
    for layer, mods in LAYERS.items():
        missing = [m for m in mods if f"`{m}.py`" not in items.get(layer, "")]
        assert layer in items and not missing, f"README's module map, layer {layer}: {missing or 'no item'}"


def test_the_package_face_gives_the_names_a_user_needs(tmp_path):
    import rotnet_repro

    assert set(rotnet_repro.__all__) == {
        "load_rotnet", "preprocess",  # pretrained
        "NIN", "NonLinearHead", "ConvHead", "TapClassifier", "make_head",  # models
        "Split", "load_cifar10", "synthetic_cifar", "augment", "normalize", "rotate_batch", "first_k_per_class",  # data
        "pretext", "PretextTask",  # the pretext registry
        "Device", "fit", "fit_many", "Trainee", "sgd", "train_step", "predict", "accuracy",  # engine
        "train_rotnet", "train_classifier", "train_supervised", "rotation_accuracy",  # train
        "FeatureCache", "extract",  # features
        "knn_accuracies", "linear_probe", "train_linear",  # probes
        "Profile", "PROFILES", "get_profile", "RunSpec", "Kind", "apply_overrides", "RunFolder",  # config, rundir
        "EXPERIMENTS", "Experiment", "Cell",  # experiments
        "RunRequest", "run_request", "run",  # request
    }
    assert all(getattr(rotnet_repro, n) is not None for n in rotnet_repro.__all__)
    assert set(rotnet_repro.__all__) <= set(dir(rotnet_repro))
    assert "table3_comparison" in rotnet_repro.EXPERIMENTS and "cpu" in rotnet_repro.PROFILES
    assert "rotation" in rotnet_repro.pretext.TASKS
    assert rotnet_repro.run("table3_comparison", profile="smoke", out=tmp_path, device="cpu") > 0
    assert (tmp_path / "results" / "smoke.csv").exists()


def test_the_package_face_is_light_to_import():
    """`import rotnet_repro` imports no torch: each public name is imported on first use."""
    import subprocess
    import sys

    code = "import sys, rotnet_repro; assert 'torch' not in sys.modules, 'torch imported'; rotnet_repro.NIN"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


# module-level containers that are meant to be filled at import time: registries of code, not of run state
REGISTRIES = {"pretext.TASKS"}


def test_no_module_global_holds_run_state():
    """Options and loaded state travel as arguments: no module keeps an empty dict, list or set at its top level to
    be filled later (as overridden profiles once were), but for the registries named above."""
    empty = (ast.Dict, ast.List, ast.Set)
    found = []
    for f in sorted(PACKAGE.glob("*.py")):
        for node in ast.parse(f.read_text()).body:
            target, value = ((node.target, node.value) if isinstance(node, ast.AnnAssign) else
                             (node.targets[0], node.value) if isinstance(node, ast.Assign) else (None, None))
            is_empty = isinstance(value, empty) and not getattr(value, "keys", getattr(value, "elts", None)) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id in ("dict", "list", "set") and not value.args)
            if isinstance(target, ast.Name) and is_empty and f"{f.stem}.{target.id}" not in REGISTRIES:
                found.append(f"{f.stem}.{target.id} (line {node.lineno})")
    assert not found, found
