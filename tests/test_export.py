import numpy as np
import pytest
import torch
import torch.nn as nn

from edgec.errors import ExportError
from edgec.export import check_parity, export_onnx
from edgec.recipe import ExportConfig


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 10)).eval()


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_export_and_parity(tmp_path, exporter):
    model = _model()
    path = tmp_path / "m.onnx"
    export_onnx(model, (1, 1, 8, 8), path, ExportConfig(exporter=exporter))
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32)
    parity = check_parity(model, path, x, atol=1e-3)
    assert parity.samples == 6
    assert parity.max_abs_diff < 1e-4
    assert parity.top1_agreement == 1.0


def test_dynamic_batch_axis(tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    export_onnx(_model(), (1, 1, 8, 8), path, ExportConfig(dynamic_batch=True))
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    export_onnx(_model(), (1, 1, 8, 8), path, ExportConfig(dynamic_batch=False))
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_value == 1


class _Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(3, 3)  # wrong in_features for an 8×8 input

    def forward(self, x):
        return self.inner(x.flatten(1))


def test_export_failure_names_the_module(tmp_path):
    with pytest.raises(ExportError, match=r"inner \(Linear\)"):
        export_onnx(_Broken().eval(), (1, 1, 8, 8), tmp_path / "m.onnx", ExportConfig())


def test_parity_failure_is_an_export_error(tmp_path):
    model = _model()
    path = tmp_path / "m.onnx"
    export_onnx(model, (1, 1, 8, 8), path, ExportConfig())
    with torch.no_grad():
        model[0].weight.add_(1.0)  # torch model now differs from the exported file
    x = np.ones((2, 1, 8, 8), np.float32)
    with pytest.raises(ExportError, match="differs from torch"):
        check_parity(model, path, x, atol=1e-3)


def test_exports_in_threads_do_not_break_each_other(tmp_path):
    """torch.onnx.export keeps process-wide state: two threads exporting at once failed with
    'GLOBALS.in_onnx_export must be True' (edgec.compress from a thread pool); they take turns."""
    import threading

    errors = []

    def export(i):
        try:
            for j in range(3):
                export_onnx(_model(), (1, 1, 8, 8), tmp_path / f"m{i}-{j}.onnx", ExportConfig())
        except Exception as exc:  # collected: a thread's exception would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=export, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and len(list(tmp_path.glob("*.onnx"))) == 6


def test_a_concurrent_export_outside_edgec_is_not_blamed_on_the_model(tmp_path, monkeypatch):
    def clashing(*args, **kwargs):
        raise AssertionError("GLOBALS.in_onnx_export must be True")

    monkeypatch.setattr(torch.onnx, "export", clashing)
    with pytest.raises(ExportError) as info:
        export_onnx(_model(), (1, 1, 8, 8), tmp_path / "m.onnx", ExportConfig())
    assert "not thread-safe" in info.value.message and "TORCH_EXPORT_LOCK" in info.value.message
    assert "model.input_shape" not in info.value.message
