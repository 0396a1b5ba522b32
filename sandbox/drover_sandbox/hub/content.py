"""The built-in text the local hub's demo repos are made from: a small support Q&A set, a
handbook of short documents (one topic each) and the corpus the tiny tokenizer is trained on.
"""

from __future__ import annotations

# (question, answer) pairs for the demo fine-tune; answers reuse a few stock phrases on purpose so
# a tiny model can learn them and the evaluation scores move.
SUPPORT_QA: list[tuple[str, str]] = [
    ("How do I reset my password?", "Open Settings, choose Security, then press Reset password."),
    ("I forgot my password.", "Open Settings, choose Security, then press Reset password."),
    ("How can I change my password?", "Open Settings, choose Security, then press Reset password."),
    ("How do I get a refund?", "Refunds are issued within 14 days from the Orders page."),
    (
        "Can I return my order for a refund?",
        "Refunds are issued within 14 days from the Orders page.",
    ),
    ("Where is my refund?", "Refunds are issued within 14 days from the Orders page."),
    ("How long does shipping take?", "Standard shipping takes 3 to 5 business days."),
    ("When will my package arrive?", "Standard shipping takes 3 to 5 business days."),
    ("Is shipping slow?", "Standard shipping takes 3 to 5 business days."),
    ("How do I contact support?", "Write to support and we answer within one business day."),
    ("Can I talk to a person?", "Write to support and we answer within one business day."),
    ("Who do I ask for help?", "Write to support and we answer within one business day."),
    ("How do I delete my account?", "Open Settings, choose Account, then press Delete account."),
    ("Can I close my account?", "Open Settings, choose Account, then press Delete account."),
    ("How do I upgrade my plan?", "Open Billing, choose Plans, then pick the plan you want."),
    ("Can I change my plan?", "Open Billing, choose Plans, then pick the plan you want."),
    ("Which payment methods work?", "We accept cards and bank transfers in Billing."),
    ("Can I pay by bank transfer?", "We accept cards and bank transfers in Billing."),
    ("How do I enable two factor login?", "Open Settings, choose Security, then turn on 2FA."),
    ("How do I secure my account?", "Open Settings, choose Security, then turn on 2FA."),
]

EVAL_QA: list[tuple[str, str]] = [
    ("I need to reset my password.", "Open Settings, choose Security, then press Reset password."),
    ("I want a refund.", "Refunds are issued within 14 days from the Orders page."),
    ("How fast is shipping?", "Standard shipping takes 3 to 5 business days."),
    ("How do I reach support?", "Write to support and we answer within one business day."),
    ("How do I remove my account?", "Open Settings, choose Account, then press Delete account."),
    ("How do I pay?", "We accept cards and bank transfers in Billing."),
]

SYSTEM_PROMPT = "You are the Acme support assistant. Answer in one sentence."

# One topic per document, so a retrieval test can ask about a topic and expect its document.
HANDBOOK: dict[str, str] = {
    "refunds.md": (
        "# Refund policy\n\nCustomers can ask for a refund within 14 days of delivery. Refunds go"
        " back to the original payment card. Open the Orders page, pick the order and press"
        " Request refund. Digital gift cards cannot be refunded.\n"
    ),
    "shipping.md": (
        "# Shipping and delivery\n\nStandard shipping takes 3 to 5 business days; express"
        " delivery arrives the next day when ordered before noon. Every parcel has a tracking"
        " number sent by email. We ship to all countries of the European Union.\n"
    ),
    "passwords.md": (
        "# Passwords and login security\n\nTo reset a forgotten password open Settings, choose"
        " Security and press Reset password; a reset link arrives by email. Turn on two factor"
        " authentication with an authenticator app to protect the account.\n"
    ),
    "gpu-quota.md": (
        "# GPU quotas for training jobs\n\nEach team may use up to eight A100 accelerators at"
        " once for fine-tuning jobs. Ask the platform team on the infra channel to raise the"
        " quota. Idle notebooks holding a GPU are stopped after two hours.\n"
    ),
    "vacation.md": (
        "# Vacation and holidays\n\nEmployees get 28 days of paid vacation per year. Book time off"
        " in the HR portal at least two weeks ahead. Unused vacation days carry over until the"
        " end of March.\n"
    ),
    "office-coffee.txt": (
        "The office coffee machine on the third floor grinds fresh beans. Descale it every"
        " Friday; oat milk is in the left fridge. Espresso cups live above the sink.\n"
    ),
}

CORPUS_EXTRA = [
    "Drover runs language models on Kubernetes: it caches weights, fine-tunes, indexes and serves.",
    "A canary rollout sends a little traffic to the new version and checks its error rate.",
    "The quick brown fox jumps over the lazy dog while the model learns to answer questions.",
]


def corpus() -> list[str]:
    """Training text for the tokenizer and the tiny model's short warm-up."""
    lines = [SYSTEM_PROMPT, *CORPUS_EXTRA]
    for q, a in SUPPORT_QA + EVAL_QA:
        lines += [q, a]
    lines += list(HANDBOOK.values())
    return lines
