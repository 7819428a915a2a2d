"""The paper's 31 benchmarks (App. B.2, Tabs. 5-7), declared in table column order.

Pure data: the entries go into :data:`CATALOG`, which :mod:`eval.registry` registers.
HF ids are the paper's; splits/fields follow the dataset cards and lmms-eval/lm-eval task
definitions (see the project's reference notes). Where a card could not be checked offline the
entry's ``notes`` says so.
"""

from __future__ import annotations

from eval import adapters as ad
from eval.benchmark import Catalog
from eval.fields import FieldMap as F

#: the entries this module declares (registered by :mod:`eval.registry`)
CATALOG = Catalog()
entry = CATALOG.entry

MC_TYPES = (("multi-choice", "mc"), ("multiple choice", "mc"), ("free-form", "math"), ("float", "math"),
            ("text", "text"))

CEVAL_SUBJECTS: tuple[str, ...] = (
    "computer_network", "operating_system", "computer_architecture", "college_programming", "college_physics",
    "college_chemistry", "advanced_mathematics", "probability_and_statistics", "discrete_mathematics",
    "electrical_engineer", "metrology_engineer", "high_school_mathematics", "high_school_physics",
    "high_school_chemistry", "high_school_biology", "middle_school_mathematics", "middle_school_biology",
    "middle_school_physics", "middle_school_chemistry", "veterinary_medicine", "college_economics",
    "business_administration", "marxism", "mao_zedong_thought", "education_science", "teacher_qualification",
    "high_school_politics", "high_school_geography", "middle_school_politics", "middle_school_geography",
    "modern_chinese_history", "ideological_and_moral_cultivation", "logic", "law",
    "chinese_language_and_literature", "art_studies", "professional_tour_guide", "legal_professional",
    "high_school_chinese", "high_school_history", "middle_school_history", "civil_servant", "sports_science",
    "plant_protection", "basic_medicine", "clinical_medicine", "urban_and_rural_planner", "accountant",
    "fire_engineer", "environmental_impact_assessment_engineer", "tax_accountant", "physician",
)

MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine",
    "college_physics", "computer_security", "conceptual_physics", "econometrics", "electrical_engineering",
    "elementary_mathematics", "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics", "high_school_mathematics",
    "high_school_microeconomics", "high_school_physics", "high_school_psychology", "high_school_statistics",
    "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality",
    "international_law", "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
    "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition", "philosophy",
    "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy",
    "virology", "world_religions",
)

MVBENCH_TASKS: tuple[str, ...] = (
    "action_sequence", "action_prediction", "action_antonym", "fine_grained_action", "unexpected_action",
    "object_existence", "object_interaction", "object_shuffle", "moving_direction", "action_localization",
    "scene_transition", "action_count", "moving_count", "moving_attribute", "state_change",
    "fine_grained_pose", "character_order", "egocentric_navigation", "episodic_reasoning",
    "counterfactual_inference",
)

# ------------------------------------------------------------------------------ VLM (16)
entry("AI2D", "AI2 Diagrams", "VLM", "lmms-lab/ai2d", "test", "Exact+Judge",
      F("question", "answer", "options", gold_kind="index", answer_type="mc", images=("image",)))
entry("BabyV", "BabyVision", "VLM", "UnipatAI/BabyVision", "train", "Exact+Judge", adapter=ad.babyvision)
entry("CharXiv", "CharXiv (reasoning + descriptive)", "VLM", "princeton-nlp/CharXiv", "validation",
      "BenchJudge", adapter=ad.charxiv, judge="charxiv", aggregate="charxiv")
entry("DynaM", "DynaMath (501 seeds x 10 variants)", "VLM", "DynaMath/DynaMath_Sample",
      "{config}", "Exact+Judge",
      F("question", "ground_truth", answer_type_from="answer_type", answer_type_map=MC_TYPES, gold_kind="letter",
        images=("decoded_image",), item_id="id", meta=("id", "subject", "knowledge_level")),
      configs=tuple(f"sample_variant{k}" for k in range(1, 11)), aggregate="dynamath",
      notes="one HF split per variant; split '{config}' means each 'config' is a split of the default config")
entry("EmbSp", "EmbSpatial-Bench", "VLM", "FlagEval/EmbSpatial-Bench", "test", "Exact+Judge",
      F("question", "answer", "answer_options", gold_kind="index", answer_type="mc", images=("image",),
        item_id="question_id", meta=("relation",)))
entry("InfoVQA", "InfographicVQA", "VLM", "lmms-lab/DocVQA", "validation", "Det.", adapter=ad.infovqa,
      configs=("InfographicVQA",), scorer="anls", judge=None)
entry("MVerse", "MathVerse (testmini)", "VLM", "CaraJ/MathVerse-lmmseval", "testmini", "Exact+Judge",
      adapter=ad.mathverse, configs=("testmini",))
entry("MVision", "MathVision", "VLM", "MathLLMs/MathVision", "test", "Exact+Judge", adapter=ad.mathvision)
entry("MVista", "MathVista (testmini)", "VLM", "AI4Math/MathVista", "testmini", "Rule+Judge",
      adapter=ad.mathvista, scorer="mathvista")
entry("MMMUPro", "MMMU-Pro (3 configs)", "VLM", "MMMU/MMMU_Pro", "test", "Exact+Judge", adapter=ad.mmmu_pro,
      configs=("standard (4 options)", "standard (10 options)", "vision"), aggregate="mmmu_pro")
entry("MM-Vet", "MM-Vet", "VLM", "lmms-lab/MMVet", "test", "BenchJudge",
      F("question", "answer", images=("image",), item_id="question_id", answer_type="open",
        meta=("capability",)), judge="mmvet")
entry("OCREN", "OCRBench v2 (English)", "VLM", "ling99/OCRBench_v2", "test", "Det.",
      adapter=ad.ocrbench_v2("en"), scorer="ocr_v2", judge=None, aggregate="ocr_v2_en")
entry("OCRZH", "OCRBench v2 (Chinese)", "VLM", "ling99/OCRBench_v2", "test", "Det.",
      adapter=ad.ocrbench_v2("cn"), scorer="ocr_v2", judge=None, aggregate="ocr_v2_cn")
entry("VisP", "VisualPuzzles", "VLM", "neulab/VisualPuzzles", "train", "Exact+Judge",
      F("question", "answer", "options", gold_kind="letter", answer_type="mc", images=("image",), item_id="id"),
      notes="the hub split was renamed train->test in later revisions; override split if needed")
entry("VBlind", "VLMs are Blind", "VLM", "XAI/vlmsareblind", "valid", "Exact+Judge",
      F("prompt", "groundtruth", images=("image",), meta=("task",)), scorer="vblind")
entry("WeMath", "WeMath (testmini)", "VLM", "We-Math/We-Math", "testmini", "Exact+Judge",
      F("question", "answer", "option", gold_kind="letter", answer_type="mc", images=("image",), item_id="ID",
        meta=("key",)))

# ------------------------------------------------------------------------------ LLM (10)
entry("AIME25", "AIME 2025 (I+II)", "LLM", "opencompass/AIME2025", "test", "Exact+Judge",
      F("question", "answer", answer_type="math"), configs=("AIME2025-I", "AIME2025-II"), modality="text")
entry("AIME26", "AIME 2026", "LLM", "MathArena/aime_2026", "train", "Exact+Judge",
      F("problem", "answer", answer_type="math", item_id="problem_idx"), modality="text")
entry("CEval", "C-Eval (val, 52 subjects)", "LLM", "ceval/ceval-exam", "val", "Exact+Judge",
      F("question", "answer", ("A", "B", "C", "D"), gold_kind="letter", answer_type="mc", item_id="id"),
      configs=CEVAL_SUBJECTS, modality="text")
entry("GPQA-D", "GPQA-Diamond", "LLM", "Idavidrein/gpqa", "train", "Exact+Judge", adapter=ad.gpqa,
      configs=("gpqa_diamond",), modality="text", gated=True)
entry("HLE", "Humanity's Last Exam", "LLM", "cais/hle", "test", "BenchJudge", adapter=ad.hle, judge="hle",
      modality="text", gated=True)
entry("IMO-AB", "IMO-AnswerBench", "LLM", "OpenEvals/IMO-AnswerBench", "train", "Exact+Judge",
      F("Problem", "Short Answer", answer_type="math", item_id="Problem ID", meta=("Category",)),
      modality="text", notes="hub id as in the paper, not checked offline")
entry("MMLU", "MMLU (test)", "LLM", "cais/mmlu", "test", "Exact+Judge",
      F("question", "answer", "choices", gold_kind="index", answer_type="mc", meta=("subject",)),
      configs=("all",), modality="text")
entry("MMLU-Pro", "MMLU-Pro", "LLM", "TIGER-Lab/MMLU-Pro", "test", "Exact+Judge",
      F("question", "answer", "options", gold_kind="letter", answer_type="mc", item_id="question_id",
        meta=("category",)), modality="text")
entry("MMLU-Rd", "MMLU-Redux 2.0 (57 subjects)", "LLM", "edinburgh-dawg/mmlu-redux-2.0", "test",
      "Exact+Judge", F("question", "answer", "choices", gold_kind="index", answer_type="mc",
                       meta=("error_type",)), configs=MMLU_SUBJECTS, modality="text")
entry("MultiCh", "MultiChallenge", "LLM", "ScaleAI/MultiChallenge", "test", "BenchJudge",
      adapter=ad.multichallenge, judge="multichallenge", modality="text")

# ----------------------------------------------------------------------------- Video (5)
entry("MMVU", "MMVU (validation)", "Video", "yale-nlp/MMVU", "validation", "BenchJudge", adapter=ad.mmvu,
      judge="mmvu", modality="video")
entry("MVBench", "MVBench (20 tasks)", "Video", "OpenGVLab/MVBench", "train", "Rule+Judge",
      F("question", "answer", "candidates", gold_kind="option_text", answer_type="mc", video="video"),
      configs=MVBENCH_TASKS, modality="video")
entry("VMME", "Video-MME (w/o subtitles)", "Video", "lmms-lab/Video-MME", "test", "Rule+Judge",
      adapter=ad.videomme(False), modality="video")
entry("VMMES", "Video-MME (with subtitles)", "Video", "lmms-lab/Video-MME", "test", "Rule+Judge",
      adapter=ad.videomme(True), modality="video")
entry("VMMMU", "Video-MMMU", "Video", "lmms-lab/VideoMMMU", "test", "Rule+Judge", adapter=ad.videommmu,
      configs=("Perception", "Comprehension", "Adaptation"), modality="video")
