"""finetune worker: LoRA, full or continued-pretraining fine-tunes with transformers + torch
(+ peft), checkpoints, held-out evaluation, and Ray Train for several workers
(`python -m drover_workers.finetune`)."""
