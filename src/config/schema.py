"""The schema of every config group: each option's keys and their types (pydantic, strict).

`check(plain)` runs before TensorFlow loads and before any data is read: an unknown key or a
value of the wrong type, in any group, is refused with the key's full name and the expected
type. It returns the typed `Config` that training and the models read: each key's default lives
in the YAML of conf/ (or, for the few optional keys, here), and nowhere else. A data config is
checked against the schema of its own source (`data.source`), a model config against that of its
own model (`model.name`). Names that live in code registries
(activations, evolution cells, optimizers) are checked against those registries by
`src.config.validate.check_names`, once Keras is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from src.metrics import HIGHER_IS_BETTER

PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
Metric = Literal[tuple(HIGHER_IS_BETTER)]  # the metrics src.metrics computes


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# -- data ----------------------------------------------------------------------------------------
class Split(Strict):
    valid: PosFloat = Field(description="a fraction (< 1) of each user's samples, or a count (>= 1)")
    test: PosFloat


class Negatives(Strict):
    sampling: Literal["popularity", "uniform"]
    seed: int


class Feature(Strict):
    """A side feature (src/data/features.py): whose field it is, its kind, the column it is read from."""

    of: Literal["item", "user", "event"]
    kind: Literal["categorical", "numeric"]
    column: str | None = None  # None: the column of the feature's name
    enabled: bool = True       # false: not read, not seen by the model (a sweep can ask whether it helps)


FeatureName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class DataCommon(Strict):
    name: str
    max_len: PosInt
    split: Split
    seed: int
    cache: bool
    features: dict[FeatureName, Feature] = {}


class RealData(DataCommon):
    path: str
    min_history: PosInt
    samples_per_user: PosInt | None = None
    negatives: Negatives


class MovieLens(RealData):
    source: Literal["movielens"]
    positive_rating: PosFloat


class Amazon(RealData):
    source: Literal["amazon"]
    category: str
    protocol: Literal["din", "dien"]
    min_meta_coverage: Probability = 0.5


class Window(Strict):
    start: int
    end: int


class Taobao(RealData):
    source: Literal["taobao"]
    file: str
    behaviors: list[Literal["pv", "buy", "cart", "fav"]] = Field(min_length=1)
    window: Window
    chunk_rows: PosInt


class EventColumns(Strict):
    user: str
    item: str
    time: str
    category: str | None = None  # else the item table's, else one category for all
    label: str | None = None     # None: implicit feedback (every row a click, negatives sampled)
    kind: str | None = None      # None: every row is a sample and a later behaviour; else data.kinds says which


class RowKinds(Strict):
    """The values of the kind column: an impression is a sample (with its label) and never a behaviour; a
    behaviour is history and never a sample."""

    impression: str = "impression"
    behaviour: str = "behaviour"


class ItemColumns(Strict):
    item: str
    category: str


class ItemTable(Strict):
    path: str | None = None
    columns: ItemColumns


class UserColumns(Strict):
    user: str


class UserTable(Strict):
    path: str | None = None
    columns: UserColumns


class EventLog(RealData):
    source: Literal["events"]
    format: Literal["auto", "csv", "tsv", "parquet"]
    columns: EventColumns
    positive_at: float | None = None  # a label column of ratings: label = rating >= positive_at
    kinds: RowKinds = RowKinds()
    time_format: Literal["auto", "s", "ms", "iso"]
    items: ItemTable
    users: UserTable
    protocol: Literal["din", "dien"]
    min_meta_coverage: Probability = 0.5
    chunk_rows: PosInt


class Synthetic(DataCommon):
    source: Literal["synthetic"]
    users: PosInt
    items: PosInt
    cats: PosInt
    seq_len: PosInt
    samples_per_user: PosInt
    drift: Probability
    noise: Probability
    target_current: Probability
    bias: float
    current: float
    partner: float
    segments: PosInt
    segment_effect: float
    quality_effect: float


DATA = {"movielens": MovieLens, "amazon": Amazon, "taobao": Taobao, "events": EventLog, "synthetic": Synthetic}


# -- model ---------------------------------------------------------------------------------------
class Activation(BaseModel):
    """`{name: ..., **kwargs}`: the name is checked against the activation registry, the keyword
    arguments by the activation's own constructor."""

    model_config = ConfigDict(strict=True, extra="allow")
    name: str


ActivationSpec = str | Activation


class Embedding(Strict):
    item: PosInt
    cat: NonNegInt
    user: NonNegInt
    feature: NonNegInt = 8  # each categorical side feature's (data.features)


class MLP(Strict):
    depth: NonNegInt
    width: PosInt
    taper: PosFloat
    batch_norm: bool
    dropout: Fraction


class Attention(Strict):
    hidden_units: list[PosInt] = Field(min_length=1)
    activation: ActivationSpec
    scale: bool
    softmax: bool
    query_projection: bool
    projection_activation: ActivationSpec = "prelu"  # used with query_projection


class Evolution(Strict):
    cell: str
    convention: Literal["paper", "code"] = "paper"


class Extractor(Strict):
    units: PosInt | None = None


class AuxLoss(Strict):
    alpha: NonNegFloat
    hidden_units: list[PosInt] = Field(min_length=1)
    activation: ActivationSpec


class BaseNet(Strict):
    name: Literal["base"]
    embedding: Embedding
    mlp: MLP
    activation: ActivationSpec
    # a model builder of the user's own, `module.function` (src/config/extensions.py): built instead of the
    # named model, with this config typed by the named model's schema
    target: str | None = Field(default=None, alias="_target_")


class DIN(BaseNet):
    name: Literal["din"]
    attention: Attention


class DIEN(DIN):
    name: Literal["dien"]
    evolution: Evolution
    extractor: Extractor
    aux_loss: AuxLoss


MODELS = {"base": BaseNet, "din": DIN, "dien": DIEN}


# -- train, tracking, root -----------------------------------------------------------------------
class Optimizer(BaseModel):
    """name and lr; other keys go to the optimizer's constructor (which checks them)."""

    model_config = ConfigDict(strict=True, extra="allow")
    name: str
    lr: PosFloat


class EarlyStopping(Strict):
    metric: Metric
    patience: NonNegInt


class Threads(Strict):
    intra_op: NonNegInt
    inter_op: NonNegInt


class Probe(Strict):
    size: NonNegInt
    metrics_size: NonNegInt


class Train(Strict):
    optimizer: Optimizer
    batch_size: PosInt
    eval_batch_size: PosInt
    epochs: PosInt
    shuffle_seed: int | None = None
    early_stopping: EarlyStopping
    deterministic: bool
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: bool = False
    threads: Threads
    probe: Probe
    eval_bootstrap: NonNegInt
    save_model: bool
    progress: Literal["auto"] | bool


class Tracking(Strict):
    uri: str | None = None
    artifact_root: str | None = None
    experiment: str | None = None


class Root(Strict):
    seed: int
    data: dict[str, Any]
    model: dict[str, Any]
    train: Train
    tracking: Tracking
    extensions: list[str] = []  # modules of the user's own code imported before registry names are checked
    sweep: Any = None        # `sweep=NAME` of src.sweep, when a config is composed for a trial
    experiment: Any = None   # the `+experiment=` preset's own notes


def _fields(schema) -> list[str]:
    return sorted(schema.model_fields)


def _schema_at(schema, path: tuple) -> type[BaseModel] | None:
    """The model class that holds the key at `path` (for suggestions), or None."""
    for part in path:
        field = schema.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nxt = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nxt is None:
            return None
        schema = nxt
    return schema


def _message(section: str, schema, err: dict) -> str:
    import difflib

    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    key = ".".join(str(p) for p in (section, *loc) if p != "")
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        holder = _schema_at(schema, loc[:-1])
        known = _fields(holder) if holder is not None else []
        near = difflib.get_close_matches(str(loc[-1]), known, n=3)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        where = ".".join(str(p) for p in (section, *loc[:-1]) if p != "")
        return f"unknown config key `{key}`.{hint} Valid keys in `{where}`: {', '.join(known)}"
    if err["type"] == "missing":
        return f"config key `{key}` is missing"
    if err["type"] == "value_error":  # a validator's own sentence, which names what it checked
        said = str(err.get("ctx", {}).get("error", err["msg"]))
        return said if not loc else f"config key `{key}` {said}"
    shown = f"{value!r} ({type(value).__name__})" if value is not None else "null"
    return f"config key `{key}`: {err['msg'].lower()}, got {shown}"


def check_section(section: str, schema, values):
    """Checks one group's values against its schema; returns them typed; raises ValueError naming the key."""
    try:
        return schema.model_validate(values)
    except ValidationError as e:
        raise ValueError(_message(section, schema, e.errors()[0])) from None


def model_section(values: dict) -> BaseNet:
    """A model config (`model.name` in base, din, dien), typed by its own model's schema."""
    name = values.get("name")
    if name not in MODELS:
        raise ValueError(f"config key `model.name` must be one of {sorted(MODELS)}, got {name!r}")
    return check_section("model", MODELS[name], values)


@dataclass(frozen=True)
class Config:
    """A checked config, typed: what training and the models read.

    `plain` is the resolved config as composed (plain dicts): what a run logs, and what the data
    sources read and key their cache by.
    """

    seed: int
    data: DataCommon
    model: BaseNet
    train: Train
    tracking: Tracking
    plain: dict


def check(plain: dict) -> Config:
    """Checks a whole plain config: root keys, then each group against its option's schema; returns it typed."""
    root = check_section("", Root, plain)
    data = plain["data"]
    return Config(seed=root.seed, data=check_section("data", data_schema(data.get("source")), data),
                  model=model_section(plain["model"]), train=root.train, tracking=root.tracking, plain=plain)


def data_schema(source) -> type[BaseModel]:
    """The schema of a data config: its built-in source's, or that of a source class in the user's code
    (`data.source=module:Class`, src/config/extensions.py)."""
    from src.config import extensions

    if source in DATA:
        return DATA[source]
    if extensions.is_named(source):
        return type(extensions.source(source)).Schema
    raise ValueError(f"config key `data.source` must be one of {sorted(DATA)} or a class of your own "
                     f"(module:Class), got {source!r}")


def spec(activation):
    """An activation as the layers take it: a name, or {"name": ..., **kwargs}."""
    return activation.model_dump() if isinstance(activation, BaseModel) else activation
