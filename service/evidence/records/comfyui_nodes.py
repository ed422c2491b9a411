"""ComfyUI node tables: widget orders of core nodes (for UI graphs), and the input names that
carry each link type in API graphs, which do not record types (the UI graph does).

Custom node packs covered by name: Efficiency Nodes (KSampler (Efficient), Efficient Loader:
`positive`/`negative` text, `empty_latent_width`), Inspire and Impact samplers (named after
KSampler), ImpactWildcardEncode (`populated_text` is the prompt used), rgthree (`opt_model`),
model merges (`model1`/`model2`: two models, so no one model), LoRA stacks, pipes (`pipe`,
`basic_pipe`: followed to the node that built them), primitives (`value`).
"""

from __future__ import annotations

# Widget names in `widgets_values` order, for the UI graph; "control_after_generate" is the
# frontend's randomize/fixed switch that follows every seed widget. Only orders known for
# certain: a guessed order would give wrong values.
_SEED = ("control_after_generate",)
WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", *_SEED, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", *_SEED, "steps", "cfg", "sampler_name",
                         "scheduler", "start_at_step", "end_at_step",
                         "return_with_leftover_noise"),
    "SamplerCustom": ("add_noise", "noise_seed", *_SEED, "cfg"),
    "RandomNoise": ("noise_seed", *_SEED),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "CFGGuider": ("cfg",),
    "FluxGuidance": ("guidance",),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width",
                           "target_height", "text_g", "text_l"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "PrimitiveNode": ("value", *_SEED),
}

# Link types (as the UI graph names them) -> input names carrying them in API graphs.
TYPE_INPUTS: dict[str, tuple[str, ...]] = {
    "MODEL": ("model", "model1", "model2", "opt_model", "base_model", "unet"),
    "CONDITIONING": ("conditioning", "conditioning_1", "conditioning_2", "conditioning_to",
                     "conditioning_from", "cond", "positive", "negative", "opt_positive",
                     "opt_negative"),
    "LATENT": ("latent_image", "samples", "latent", "opt_latent", "latents", "samples_to",
               "samples_from", "samples1", "samples2", "destination", "source"),
    "IMAGE": ("images", "image", "pixels", "opt_image"),
}
PIPE_INPUTS = ("pipe", "basic_pipe", "detailer_pipe", "opt_pipe", "context", "base_ctx")
# Inputs holding a model's file name, best first (Efficient Loader: ckpt_name too).
MODEL_NAMES = ("ckpt_name", "unet_name", "model_name", "base_ckpt_name", "ckpt")
# Inputs holding prompt text, best first: the wildcard encoder's populated text is what ran.
TEXT_NAMES = ("populated_text", "text", "text_g", "t5xxl", "clip_g", "string", "prompt",
              "text_positive", "value")
# Encoders taking the prompt per text encoder (SDXL, Flux, SD3): the second is added when it
# differs from the first.
TEXT_PAIRS = {"text_g": "text_l", "t5xxl": "clip_l", "clip_g": "clip_l"}
# Nodes whose output is computed from their inputs (random and wildcard generators, math):
# a value reached through one is not stated in the file, so it is left out.
COMPUTING_MARKERS = ("Random", "Math", "Expression", "Calc", "Eval", "Formula", "Operation",
                     "Counter", "Increment", "DPCombinatorial", "DPJinja", "DPMagic",
                     "DPFeelingLucky", "Concat", "Replace", "Join")
# Nodes passing their one input through unchanged (frontend reroutes, pack variants).
PASS_THROUGH_MARKERS = ("Reroute", "Primitive", "Constant")
# Conditioning nodes whose output does not carry their input's prompt.
ZERO_CONDITIONING = ("ConditioningZeroOut",)
SEED_NAMES = ("seed", "noise_seed", "value", "int", "number", "seed_value")
LATENT_SIZE = (("width", "height"), ("empty_latent_width", "empty_latent_height"))
# Output nodes, best first: a saved file comes from a save node rather than a preview.
SAVE_MARKERS = ("Save", "save")
PREVIEW_MARKERS = ("Preview",)
MUTED_MODES = (2, 4)  # UI node modes "never" and "bypass": the node did not run as drawn
