"""From-scratch teaching code: each module is one formula of the book, checked against the
production library that does the same job, and nothing in the pipeline imports it.

* :mod:`~ift_tutorial.scratch.attention`: ``softmax(QK^T / sqrt(d_k)) V``, masks, multi-head
  and cross-attention (chapter 2), checked against ``torch.nn.functional.scaled_dot_product_attention``;
* :mod:`~ift_tutorial.scratch.seq2seq`: a small encoder-decoder, cross-attention at work (chapter 3);
* :mod:`~ift_tutorial.scratch.llama`: a Llama block and model (chapter 4), checked against
  transformers' ``LlamaForCausalLM`` weight for weight;
* :mod:`~ift_tutorial.scratch.olmo2`: OLMo 2's block, norms on the sublayers' outputs and
  QK-norm (chapter 4), checked against transformers' ``Olmo2ForCausalLM``;
* :mod:`~ift_tutorial.scratch.quantization`: NF4 (chapter 6), checked bit for bit against bitsandbytes;
* :mod:`~ift_tutorial.scratch.lora`: ``LoRALinear`` (chapter 6), checked against PEFT;
* :mod:`~ift_tutorial.scratch.lora_scaling`: how far one SGD or Adam step moves a LoRA layer's
  output as the rank grows (chapter 6).
"""
