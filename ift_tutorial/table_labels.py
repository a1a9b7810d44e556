"""Chinese labels of the book's tables and curated printouts, for :data:`ift_tutorial.i18n.ZH`.

Headers, row labels and setting names that :mod:`ift_tutorial.book.tables` and
:mod:`ift_tutorial.book.printouts` show (and the chapters pass to them), English -> Chinese.
:mod:`ift_tutorial.i18n` merges them into its catalogue, so :func:`ift_tutorial.i18n.t`
finds them like any figure label. Terms follow book/zh/glossary.md.
"""

from __future__ import annotations

#: English table label -> Chinese.
TABLE_LABELS_ZH: dict[str, str] = {
    "not measured at this scale": "此规模下未测量", "setting": "设置", "value": "取值", "metric": "指标",
    "yes": "是", "no": "否", "position": "位置", "token": "词元", "id": "编号", "label": "标签",
    "part": "部分", "what it holds": "内容", "files": "文件数", "size": "大小",
    "trainable {trainable} of {total} parameters ({share})": "可训练参数 {trainable}，共 {total}（{share}）",
    "load the weights in 4 bits": "以 4 位加载权重", "4-bit data type": "4 位数据类型",
    "double quantisation": "双重量化", "compute dtype": "计算精度", "storage dtype": "存储类型",
    "alpha": "缩放系数 alpha", "dropout": "丢弃率（dropout）", "adapted layers": "加适配器的层",
    "rank-stabilised scaling": "秩稳定缩放（rsLoRA）", "biases trained": "训练的偏置", "task": "任务类型",
    "device": "设备", "bf16 mixed precision": "bf16 混合精度", "fp16 mixed precision": "fp16 混合精度",
    "optimizer": "优化器", "optimizer steps": "优化器步数", "batch size per device": "每个设备的批大小",
    "gradient accumulation": "梯度累积步数", "learning rate": "学习率",
    "learning-rate schedule": "学习率调度", "warm-up (steps, or a share below 1)": "预热（步数；小于 1 时为比例）",
    "loss on the answers only": "只在回答上计算损失", "max tokens per example": "每条样本的最大词元数",
    "packing": "打包（packing）", "checkpoint every (steps)": "检查点间隔（步）",
    "log every (steps)": "日志间隔（步）", "seed": "随机种子",
    "the trained LoRA adapter (safetensors) and its tokenizer": "训练好的 LoRA 适配器（safetensors）及其分词器",
    "checkpoints to resume from: adapter, optimizer, scheduler, random states": "用于续训的检查点：适配器、优化器、调度器、随机数状态",
    "scores before and after, timings, parameter counts, versions": "微调前后的分数、耗时、参数量、版本",
    "the trainer's log: loss and learning rate per logged step": "训练器日志：每个记录步的损失与学习率",
    "the loss curve": "损失曲线",
    "the settings that shape the weights (a resume must match them)": "决定权重的设置（续训时必须一致）",
    "held-out answers before and after, one line per question": "微调前后的留出集回答，每题一行",
    "IFEval answers before and after": "微调前后的 IFEval 回答",
    "GSM8K answers before and after": "微调前后的 GSM8K 回答", "language": "语言",
    "tuned model": "微调后的模型", "question": "问题", "instructions": "指令", "base answer": "基座模型的回答",
    "base follows": "基座模型遵循", "tuned answer": "微调后的回答", "tuned follows": "微调后遵循",
    "target": "目标答案", "base (flexible)": "基座（灵活提取）", "tuned (flexible)": "微调后（灵活提取）",
    "tuned (strict)": "微调后（严格匹配）", "no number found": "未找到数字", "answer": "答案",
    "base continues": "基座模型续写", "tuned continues": "微调后续写", "all": "全部", "one token": "一个词元",
    "up to the limit": "不超过上限", "held-out exact match": "留出集精确匹配",
    "completion accuracy": "续写准确率", "base, m = 0": "基座，m = 0", "tuned, m = 1": "微调后，m = 1",
    "greedy decoding": "贪心解码", "stop tokens": "停止词元", "new tokens at most": "最多生成的词元数",
    "batch size": "批大小", "exact-match questions": "精确匹配题数", "IFEval prompts": "IFEval 提示数",
    "GSM8K problems": "GSM8K 题数", "perplexity conversations": "困惑度对话数",
    "mixed precision": "混合精度", "effective batch": "有效批大小", "gradient checkpointing": "梯度检查点",
    "training time": "训练用时", "whole run, evaluations included": "整次运行（含评估）",
    "training examples": "训练样本数", "trainable parameters (the adapter)": "可训练参数（适配器）",
    "all parameters": "全部参数", "peak memory of the process": "进程内存峰值",
    "device, compute dtype, optimizer": "设备、计算精度、优化器", "this run": "本次运行", "case": "情形",
    "backward / forward, measured": "反向 / 前向（实测）",
    "checkpointing costs, arithmetic": "检查点的代价（推算）",
    "checkpointing costs, measured": "检查点的代价（实测）",
    "frozen 4-bit base + LoRA": "冻结的 4 位基座 + LoRA", "full fine-tune": "全参数微调",
    "answer before": "微调前的回答", "answer after": "微调后的回答",
    "gradient clipping (max norm)": "梯度裁剪（最大范数）", "checkpoints kept": "保留的检查点数",
    "adapter type": "适配器类型", "this machine": "本机", "a T4": "一块 T4",
    # chapter 9: preference tuning
    "kind of rejected answer": "被拒绝回答的类型", "chosen": "选中的回答", "rejected": "被拒绝的回答",
    "wrong fact": "事实错误", "runs on": "答完不停", "wrong language": "语言不对",
    "before DPO": "DPO 之前", "after DPO": "DPO 之后", "preference accuracy": "偏好准确率",
    "reward margin": "奖励差", "likelihood accuracy": "似然排序准确率",
    "log-probability of the chosen answers": "选中回答的对数概率",
    "log-probability of the rejected answers": "被拒绝回答的对数概率",
    "answers in the asked language": "用提问的语言作答", "chosen answer": "选中的回答",
    "rejected answer": "被拒绝的回答", "change in log-probability": "对数概率的变化",
    "a separate reference model": "单独加载的参考模型",
    "the reference adapter (frozen copy)": "参考适配器（冻结的副本）",
    "the reference's forward pass": "参考模型的前向传播",
    "a DPO step, in all": "一步 DPO 的总显存",
    "the model card the trainer writes": "训练器写的模型卡片",
}
