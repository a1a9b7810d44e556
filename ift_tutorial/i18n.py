"""Which edition of the book is running, English or Chinese, and the labels of its figures.

The Chinese edition's notebooks (``book/zh/chapters/NN_*.ipynb``) run the English
notebooks' code cells byte for byte; only the prose is translated. So a figure label is
written once, in English, through :func:`t`::

    ax.set_xlabel(t("optimizer step"))   # "optimizer step" here, "优化器步数" in Chinese

and :func:`t` looks it up in :data:`ZH` when the Chinese edition runs. Maths labels
(``r"$d_k$"``) and names (``"NF4"``, ``"Qwen2.5-7B"``) read the same in both editions and
do not go through it; neither do printed outputs, which stay English in both editions.

:func:`edition` decides which edition runs, in this order:

1. ``IFT_LANG`` (``en`` or ``zh``) in the environment;
2. what :func:`set_edition` chose (:func:`ift_tutorial.book.notebook.setup_notebook` calls it
   with the edition it decided, so later calls are cheap and do not change mid-chapter);
3. the notebook's path, Chinese when one of its folders is ``zh``
   (``book/zh/chapters/02_attention.ipynb``), as the Jupyter server (``JPY_SESSION_NAME``),
   JupyterLab or VS Code (IPython's ``__session__``) or Colab's session list report it;
4. the working folder: Jupyter Book, nbclient and nbval run a notebook in its own folder,
   so ``book/zh/chapters`` means Chinese;
5. English.

Chinese text inside a maths label (``"$...$"``) would be drawn by matplotlib's mathtext,
which has no CJK glyphs (dummy boxes, even with a CJK font installed); the Chinese
entries of :data:`ZH` therefore write their maths in Unicode (``x₁ … xₛ``, ``QKᵀ/√d_k``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import urllib.parse
import urllib.request
import warnings

from .errors import UserFacingError
from .table_labels import TABLE_LABELS_ZH

#: The environment variable that picks the edition; it wins over everything else.
LANG_ENV = "IFT_LANG"
#: The editions: English (the source) and Chinese.
LANGUAGES: tuple[str, ...] = ("en", "zh")
#: Colab's Jupyter server lists its notebook sessions here (address and port from Colab's
#: own ``COLAB_JUPYTER_IP`` and ``KMP_TARGET_PORT`` when they are set).
COLAB_SESSIONS_URL = "http://{ip}:{port}/api/sessions"
COLAB_DEFAULT_IP, COLAB_DEFAULT_PORT = "172.28.0.12", "9000"

_chosen: str | None = None  # what set_edition() chose
_warned: set[str] = set()  # English labels already reported as missing from ZH


class MissingTranslationWarning(UserWarning):
    """A figure label of the Chinese edition has no entry in :data:`ZH` (drawn in English)."""


def _check(value: str, where: str) -> str:
    """``value`` as an edition (``ZH`` counts as ``zh``), or a clear error naming ``where``."""
    lang = value.strip().lower()
    if lang not in LANGUAGES:
        raise UserFacingError(f"{where} is {value!r}; the editions are {', '.join(LANGUAGES)} "
                              f"(English, Chinese)")
    return lang


def set_edition(lang: str | None) -> None:
    """Choose the edition for the rest of this process; None forgets the choice.

    ``IFT_LANG`` in the environment still wins (see :func:`edition`).

    Raises:
        UserFacingError: ``lang`` is not one of :data:`LANGUAGES`.

    Example:
        >>> from ift_tutorial import edition, set_edition
        >>> set_edition("zh")
        >>> edition()  # unless IFT_LANG is set
        'zh'
        >>> set_edition(None)  # back to finding it out
    """
    global _chosen
    _chosen = None if lang is None else _check(lang, "the edition")


def _has_zh_folder(path: str, is_file: bool) -> bool:
    """True when one of the folders of ``path`` (``/`` or ``\\`` separated) is ``zh``."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    return "zh" in (parts[:-1] if is_file else parts)


def _jupyter_session_path() -> str | None:
    """The notebook's path as the Jupyter server passes it to the kernel."""
    return os.environ.get("JPY_SESSION_NAME") or None


def _ipython_session_path() -> str | None:
    """``__session__`` in the user namespace (JupyterLab, VS Code); no IPython, no path."""
    if "IPython" not in sys.modules:  # never imported: no shell is running
        return None
    from IPython import get_ipython

    shell = get_ipython()
    session = shell.user_ns.get("__session__") if shell is not None else None
    return session if isinstance(session, str) and session else None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file name (``kernel-<id>.json``)."""
    if "ipykernel" not in sys.modules:
        return None
    from ipykernel.connect import get_connection_file

    name = os.path.basename(get_connection_file())
    return name[len("kernel-"):-len(".json")] if name.startswith("kernel-") else None


@functools.cache
def _colab_session_paths() -> tuple[str, ...]:
    """The notebook paths of Colab's session list (this kernel's session when it is listed),
    URL-decoded: a notebook opened from GitHub has its GitHub path in there. Asked once."""
    url = COLAB_SESSIONS_URL.format(ip=os.environ.get("COLAB_JUPYTER_IP") or COLAB_DEFAULT_IP,
                                    port=os.environ.get("KMP_TARGET_PORT") or COLAB_DEFAULT_PORT)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a fixed local URL)
            sessions = [s for s in json.load(response) if isinstance(s, dict)]
    except Exception:  # noqa: BLE001 (no server, a timeout, not JSON): cached as no path
        return ()
    try:
        kernel = _kernel_id()
    except Exception:  # noqa: BLE001 (no connection file: every session counts)
        kernel = None
    own = [s for s in sessions if kernel and (s.get("kernel") or {}).get("id") == kernel]
    return tuple(urllib.parse.unquote(str(s.get("path") or "")) for s in own or sessions)


def _notebook_paths() -> list[str]:
    """Every path of the running notebook that can be found; a source that fails is skipped."""
    paths = []
    for source in (_jupyter_session_path, _ipython_session_path):
        try:
            path = source()
        except Exception:  # noqa: BLE001 (a hint, never a reason to fail a chapter)
            path = None
        if path:
            paths.append(path)
    if "google.colab" in sys.modules:  # only Colab runs that server
        paths += _colab_session_paths()
    return paths


def edition() -> str:
    """The edition that is running: ``"en"`` or ``"zh"``.

    ``IFT_LANG`` in the environment wins (an empty value counts as unset), then
    :func:`set_edition`'s choice, then a ``zh`` folder in the notebook's path or in the
    working folder; otherwise English. The module docstring has the details.

    Raises:
        UserFacingError: ``IFT_LANG`` is set to something other than ``en`` or ``zh``.

    Example:
        >>> from ift_tutorial import edition
        >>> edition() in ("en", "zh")
        True
    """
    env = os.environ.get(LANG_ENV, "").strip()
    if env:
        return _check(env, f"{LANG_ENV} (in the environment)")
    if _chosen is not None:
        return _chosen
    if any(_has_zh_folder(p, is_file=True) for p in _notebook_paths()):
        return "zh"
    try:
        cwd = os.getcwd()
    except OSError:  # the working folder was deleted
        return "en"
    return "zh" if _has_zh_folder(cwd, is_file=False) else "en"


def t(text: str, /, **fields: object) -> str:
    """The figure label ``text`` (English) in the running edition, formatted with ``fields``.

    In English it is ``text.format(**fields)`` (``text`` itself without fields). In
    Chinese it is :data:`ZH`'s entry for ``text``, formatted the same way; a label missing
    there is drawn in English, with one :class:`MissingTranslationWarning` per label
    (``tests/test_i18n.py`` checks that every literal label of the package and of the
    chapters has an entry).

    Example:
        >>> from ift_tutorial import set_edition, t
        >>> set_edition("en")  # IFT_LANG, if set, would win
        >>> t("training loss")
        'training loss'
        >>> set_edition("zh")
        >>> t("training loss"), t("last layer, head {h}", h=3)
        ('训练损失', '最后一层，第 3 个头')
        >>> set_edition(None)
    """
    if edition() == "zh":
        translated = ZH.get(text)
        if translated is None:
            if text not in _warned:
                _warned.add(text)
                warnings.warn(MissingTranslationWarning(
                    f"no Chinese label for {text!r} in ift_tutorial.i18n.ZH: drawn in English"),
                    stacklevel=2)
        else:
            text = translated
    return text.format(**fields) if fields else text


#: English figure label -> Chinese, for :func:`t`. Terms follow book/zh/glossary.md; the
#: ``{fields}`` of an entry are those of its English label; maths in Unicode, not ``$...$``.
ZH: dict[str, str] = {
    # --- shared words --------------------------------------------------------------
    # --- numbers inside prose (glued by the chapters) ------------------------------
    "{n} in a thousand": "千分之 {n}",
    "{low} to {high}": "{low} 到 {high}",
    "before": "微调前",
    "after": "微调后",
    "step": "步数",
    "optimizer step": "优化器步数",
    "training loss": "训练损失",
    # --- plots.py: training runs and evaluation (chapters 5, 7, 8) -----------------
    "Training loss (assistant tokens only)": "训练损失（只计回答的词元）",
    "cross-entropy loss": "交叉熵损失",
    "held-out exact match (%)": "留出集精确匹配（%）",
    # --- plots_rl.py: the GRPO reward curve (chapter 9) ------------------------------
    "per step": "每一步",
    "moving average of {n} steps": "{n} 步滑动平均",
    "held-out exact match before": "训练前的留出集精确匹配",
    "mean reward of the sampled answers": "采样回答的平均奖励",
    "GRPO: reward during training": "GRPO：训练中的奖励",
    # chapter 9's GRPO tables
    "end of turn": "结束本轮", "reward": "奖励", "advantage": "优势",
    "held-out questions": "留出题数", "right before GRPO": "GRPO 前答对",
    "right after GRPO": "GRPO 后答对", "wrong before, right after": "之前错、之后对",
    "right before, wrong after": "之前对、之后错",
    "sign test: chance of a split this uneven": "符号检验：出现如此不均衡的概率",
    "mean reward, first and last 10 steps": "平均奖励：前 10 步与后 10 步",
    "% (perplexity: value)": "%（困惑度：原值）",
    "Which tokens carry the loss": "哪些词元计入损失",
    "{title}: {kept} of {total} tokens have a label (orange), the others are -100 (grey)":
        "{title}：{total} 个词元中有 {kept} 个带标签（橙色），其余为 -100（灰色）",
    "{name}: {n} conversations": "{name}：{n} 段对话",
    "{name}: {n} conversations, {over} over the limit": "{name}：{n} 段对话，{over} 段超出上限",
    "tokens per conversation": "每段对话的词元数",
    "conversations": "对话数",
    # the rows of evaluation.before_after_table (titles of plot_metrics_before_after)
    "exact match": "精确匹配",
    "IFEval prompt-level strict": "IFEval 提示级严格",
    "IFEval prompt-level loose": "IFEval 提示级宽松",
    "IFEval instruction-level strict": "IFEval 指令级严格",
    "IFEval instruction-level loose": "IFEval 指令级宽松",
    "GSM8K flexible": "GSM8K 灵活提取",
    "GSM8K strict": "GSM8K 严格匹配",
    "answer-token perplexity": "回答词元困惑度",
    # --- memory.py: the components of a memory plan (legend of plot_plan) ---------
    "base weights (4-bit)": "基座权重（4 位）",
    "base weights (16-bit)": "基座权重（16 位）",
    "quantisation constants": "量化常数",
    "16-bit parts (embeddings, head, norms, biases)": "16 位部分（嵌入、输出头、归一化、偏置）",
    "LoRA parameters": "LoRA 参数",
    "LoRA gradients": "LoRA 梯度",
    "optimizer states": "优化器状态",
    "activations": "激活值",
    "logits and loss (fp32)": "logits 与损失（fp32）",
    "matmul workspace": "矩阵乘法工作区",
    "CUDA context and overhead": "CUDA 上下文与其他开销",
    "16-bit parts gathered whole (root unit or head)": "完整聚合的 16 位部分（根单元或输出头）",
    # --- quantization.py (chapter 6) ------------------------------------------------
    "level (after dividing a block by its absmax)": "量化级别（块内除以 absmax 之后）",
    "relative RMS error": "相对均方根误差",
    # --- diagrams.py: attention (chapters 2, 3) -------------------------------------
    "context C\n{shape}": "上下文 C\n{shape}",
    "scores $QK^\\top/\\sqrt{{d_k}}$\n{shape}": "分数 QKᵀ/√d_k\n{shape}",
    "weights: mask,\nsoftmax per row\n{shape}": "权重：先掩码，\n再逐行 softmax\n{shape}",
    "weights · V\n{shape}": "权重 · V\n{shape}",
    "cross-attention: K and V from another sequence": "交叉注意力：K 和 V 来自另一个序列",
    "self-attention: Q, K, V from X": "自注意力：Q、K、V 都来自 X",
    "Encoder–decoder (T5, Whisper)": "编码器–解码器（T5、Whisper）",
    "source tokens $x_1 \\dots x_S$": "源序列词元 x₁ … xₛ",
    "encoder × N\nbidirectional\nself-attention, MLP": "编码器 × N\n双向自注意力\n与 MLP",
    "encoder output (S × d)": "编码器输出（S × d）",
    "target so far $y_1 \\dots y_t$": "已有的目标词元 y₁ … yₜ",
    "decoder × N\ncausal self-attention\ncross-attention\n(Q from target,\nK, V from encoder)\nMLP":
        "解码器 × N\n因果自注意力\n交叉注意力\n（Q 来自目标序列，\nK、V 来自编码器）\nMLP",
    "next target token": "下一个目标词元",
    "Decoder-only (Qwen2.5, Llama, Mistral)": "仅解码器（Qwen2.5、Llama、Mistral）",
    "one sequence: prompt tokens | answer tokens": "一个序列：提示词元 | 回答词元",
    "decoder × N\ncausal self-attention\n(answer rows look back\nat prompt columns)\nMLP":
        "解码器 × N\n因果自注意力\n（回答的行回看\n提示的列）\nMLP",
    "next token at every position": "每个位置的下一个词元",
    # --- diagrams.py: the Llama block (chapter 4) -----------------------------------
    "token ids  (B, T)": "词元 id  (B, T)",
    "embedding  (V × d)": "嵌入  (V × d)",
    "× N decoder blocks": "× N 个解码器块",
    "causal GQA attention\nwith RoPE on q, k": "因果 GQA 注意力\nq、k 施加 RoPE",
    "final RMSNorm": "最后的 RMSNorm",
    "lm_head (d × V) → logits": "输出头 lm_head (d × V) → logits",
    "residual": "残差",
    "attention, per layer": "注意力（每层）",
    "RoPE: rotate q and k by position": "RoPE：按位置旋转 q 和 k",
    "softmax(q kᵀ / √d_k + causal mask) v": "softmax(q kᵀ / √d_k + 因果掩码) v",
    "o = W_o · (heads concatenated)": "o = W_o ·（各头拼接）",
    "k, v: fewer heads than q (grouped-query)": "k、v 的头比 q 少（分组查询注意力）",
    "SwiGLU MLP, per position": "SwiGLU MLP（逐位置）",
    # --- diagrams.py: LoRA and QLoRA (chapter 6) -------------------------------------
    "W₀   (out × in)\nfrozen: {millions:.1f} M weights\nno gradient":
        "W₀   (out × in)\n冻结：{millions:.1f} M 个权重\n没有梯度",
    "A   (r × in),  r = {r},  random": "A   (r × in)，r = {r}，随机初始化",
    "B   (out × r),  starts at 0": "B   (out × r)，初始为 0",
    "trainable: r·(in + out) = {thousands:.0f} k ({percent:.2g} % of W₀)":
        "可训练：r·(in + out) = {thousands:.0f} k（W₀ 的 {percent:.2g} %）",
    "merge after training:\nW = W₀ + s·BA (one matmul)": "训练后合并：\nW = W₀ + s·BA（一次矩阵乘法）",
    "stored (the whole model, all the time)": "存储（整个模型，始终常驻）",
    "NF4 codes: 4 bits per weight\n(two per byte, uint8)": "NF4 编码：每个权重 4 位\n（每字节两个，uint8）",
    "absmax: one per 64 weights\nstored in 8 bits (double quant)":
        "absmax：每 64 个权重一个\n以 8 位存储（双重量化）",
    "fp32 scale + offset:\none per 256 absmax values": "fp32 缩放 + 偏移：\n每 256 个 absmax 一组",
    "≈ {bits:.2f} bits per weight in memory": "显存中每个权重约 {bits:.2f} 位",
    "computed (one layer at a time, per matmul)": "计算（一次一层，每次矩阵乘法时）",
    "dequantise:\nW = level[code] · absmax\n→ {dtype} copy": "反量化：\nW = level[code] · absmax\n→ {dtype} 副本",
    "y = W x   ({dtype} matmul)": "y = W x   （{dtype} 矩阵乘法）",
    "x   ({dtype} activations)": "x   （{dtype} 激活值）",
    "temporary": "临时",
    "s · B A x\nLoRA in {dtype}, trainable": "s · B A x\nLoRA 用 {dtype}，可训练",
    "no 4-bit arithmetic: every multiply is\nin the 16-bit compute dtype; gradients\n"
    "flow through W to x, never into W":
        "没有 4 位运算：每次乘法都在\n16 位计算精度下进行；梯度\n经 W 传到 x，从不流入 W",
    # --- diagrams.py: what each GPU keeps (chapter 12) --------------------------------
    "embeddings (16-bit)": "嵌入（16 位）",
    "head (16-bit)": "输出头（16 位）",
    "LoRA weights": "LoRA 权重",
    "kept by this GPU": "本 GPU 持有",
    "not held": "不持有",
    "gathered whole during the step": "计算时临时完整聚合",
    # --- chapter 2: attention ---------------------------------------------------------
    "variance of the scores": "分数的方差",
    "Score variance": "分数方差",
    "unscaled": "未缩放",
    "scaled": "已缩放",
    "uniform (1/16)": "均匀分布（1/16）",
    "mean largest weight": "最大权重的均值",
    "Softmax saturation": "Softmax 饱和",
    r"median $\|\partial p / \partial s\|_F$": "‖∂p/∂s‖_F 的中位数",
    "Softmax gradient": "Softmax 梯度",
    "causal mask": "因果掩码",
    "causal & padding mask": "因果掩码与填充掩码",
    "weights, padded sequence": "权重（含填充的序列）",
    "key position": "键的位置",
    "query position": "查询的位置",
    "Qwen2.5-7B without GQA": "Qwen2.5-7B（不用 GQA）",
    "a T4's 15 GiB": "T4 的 15 GiB",
    "tokens in the context (batch of 1)": "上下文中的词元数（批大小 1）",
    "KV cache, GiB (bf16)": "键值缓存，GiB（bf16）",
    "last layer, head {h}": "最后一层，第 {h} 个头",
    # --- chapter 3: cross-attention ------------------------------------------------------
    "source token (key / value)": "源序列词元（键 / 值）",
    "decoder input (query)": "解码器输入（查询）",
    "cross-attention, averaged over heads": "交叉注意力（各头平均）",
    "key (looked at)": "键（被关注）",
    "query (looking)": "查询（发出关注）",
    "decoder-only, last layer": "仅解码器，最后一层",
    # --- chapter 4: the Transformer ------------------------------------------------------
    "base 1e4 (Llama-2, Mistral)": "基数 1e4（Llama-2、Mistral）",
    "base 1e6 (Qwen2.5)": "基数 1e6（Qwen2.5）",
    "pair index i": "维度对序号 i",
    "wavelength (positions per turn)": "波长（转一圈的位置数）",
    "RoPE wavelengths": "RoPE 的波长",
    "distance between query and key": "查询与键的距离",
    "score (relative)": "分数（相对值）",
    "Long-distance decay": "远距离衰减",
    "parameters (billions)": "参数量（十亿）",
    "Where the parameters of 7B models live": "7B 模型的参数都在哪里",
    # llama.COMPONENTS (the legend of the parameter breakdown)
    "embeddings": "嵌入",
    "attention": "注意力",
    "mlp": "MLP",
    "norms": "归一化",
    "lm_head": "语言模型头",
    # --- chapter 5: instruction data ------------------------------------------------------
    "One training example of the tiny preset": "tiny 预设的一条训练样本",
    # --- chapter 6: QLoRA --------------------------------------------------------------------
    "Sixteen 4-bit levels: NF4 crowds them near zero, where most weights are":
        "16 个 4 位量化级别：NF4 把它们集中在零附近，那里的权重最多",
    "Round-trip error of 4-bit data types (lower is better)": "4 位数据类型的往返误差（越低越好）",
    "rank r": "秩 r",
    "first-step output change\n(relative to r = {r})": "第一步的输出变化\n（相对于 r = {r}）",
    "plain SGD": "普通 SGD", "optimizer and scale": "优化器与缩放", "block {i}": "第 {i} 块",
    "forward pass": "前向传播", "backward pass, last block first": "反向传播，从最后一块开始",
    "without gradient checkpointing": "不用梯度检查点", "with gradient checkpointing": "使用梯度检查点",
    "every activation stays until the backward pass needs it": "每个激活值都留在显存里，直到反向传播用到它",
    "only block inputs stay; each block is recomputed from its input: one extra forward pass":
        "只留下每块的输入；反向传播时从输入重新计算每一块：多一次前向传播",
    "{size} of activations": "激活值 {size}", "stored for the backward pass": "为反向传播保存",
    "discarded after the forward pass": "前向传播后丢弃", "recomputed in the backward pass": "反向传播时重新计算",
    "Qwen2.5-7B QLoRA, seq 1024: estimated peak per component":
        "Qwen2.5-7B QLoRA，序列长度 1024：各部分的峰值显存估计",
    # --- chapter entries ---------------------------------------------------------------
    "next token": "下一个词元", "probability": "概率", "prefix": "前缀", "right city": "正确城市",
    "loss": "损失", "wrong city": "错误城市", "loss (wrong)": "损失（错误城市）", "completion prompt": "续写提示",
    "continues with": "续写内容", "chat question": "对话问题", "base model's answer": "基座模型的回答",
    "reference": "参考答案", "base model": "基座模型", "parameters": "参数量", "base weights": "基座权重",
    "training data": "训练数据", "batch x accumulation": "批大小 × 梯度累积", "needs a GPU": "需要 GPU",
    "tiny preset": "tiny 预设", "qwen2.5-7b preset": "qwen2.5-7b 预设", "head width d_k": "头宽 d_k",
    "variance, unscaled": "方差（未缩放）", "variance, scaled": "方差（已缩放）",
    "largest weight, unscaled": "最大权重（未缩放）", "largest weight, scaled": "最大权重（已缩放）",
    "softmax gradient, unscaled": "softmax 梯度（未缩放）",
    "softmax gradient, scaled": "softmax 梯度（已缩放）", "model": "模型", "layers": "层数",
    "query heads H": "查询头数 H", "key/value heads H_kv": "键值头数 H_kv", "sliding window": "滑动窗口",
    "cache per token": "每个词元的缓存", "cache at 32k tokens": "32k 词元时的缓存",
    "cache at 32k tokens without GQA": "32k 词元时的缓存（不用 GQA）", "architecture": "架构",
    "hidden size d": "隐藏层宽度 d", "MLP width d_ff": "MLP 宽度 d_ff",
    "ratio d_ff / d": "比值 d_ff / d", "LLaMA rule": "LLaMA 规则", "component": "组成部分",
    "total": "合计", "file": "文件", "format": "格式", "turns": "对话轮数", "with a system turn": "含系统消息",
    "weights": "权重", "numbers": "数值个数", "NF4 error": "NF4 误差", "FP4 error": "FP4 误差",
    "int4 error": "int4 误差", "normal": "正态分布", "Student-t (3 dof)": "学生 t 分布（自由度 3）",
    "tiny preset (all linear)": "tiny 预设（所有线性层）", "preset": "预设", "vocabulary": "词表大小",
    "frozen model": "冻结的模型", "planned peak": "计划峰值",
    # --- chapter 7: fine-tuning ----------------------------------------------------------------
    # --- chapters 11 and 12, appendix A ------------------------------------------------------
    "activations (own batch)": "激活值（各自的批）", "2 GPUs": "2 块 GPU", "8 GPUs": "8 块 GPU",
    "GPUs and strategy": "GPU 数与策略", "estimated peak per GPU (GiB)": "每块 GPU 的峰值估计（GiB）",
    "query / key-value heads": "查询头 / 键值头", "KV cache per token": "每个词元的 KV 缓存",
    "licence": "许可证", "gated": "需申请访问", "library": "库", "installed": "已安装版本",
    "what it does in this book": "在本书中的作用", "required": "要求的版本", "prompt": "提示",
    "prediction": "模型的回答", "loss on the answer tokens": "回答词元上的损失",
    "tensors, autograd, optimizers: the arithmetic of training": "张量、自动求导、优化器：训练的算术",
    "model architectures, tokenizers, chat templates, loading weights": "模型架构、分词器、对话模板、加载权重",
    "4-bit NF4 weights and their matmuls (the Q of QLoRA), 8-bit optimizers":
        "4 位 NF4 权重及其矩阵乘法（QLoRA 中的 Q）、8 位优化器",
    "LoRA adapters: attach, train, save, load, merge": "LoRA 适配器：挂载、训练、保存、加载、合并",
    "SFTTrainer: chat-formatted data, loss on the answers only": "SFTTrainer：对话格式的数据，只在回答上计算损失",
    "device placement, mixed precision, launching on several GPUs": "设备放置、混合精度、在多块 GPU 上启动",
    "reading and mapping instruction data": "读取并转换指令数据",
}

# The labels of the chapters' tables and printouts (ift_tutorial.book.tables, .printouts).
ZH.update(TABLE_LABELS_ZH)
