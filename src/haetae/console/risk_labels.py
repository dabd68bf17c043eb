"""The words the risk pages share: event kinds, decisions, labels and the labelling form,
in Korean and English."""

from __future__ import annotations

from haetae.console.pages import Labels

RISK_LABELS: Labels = {
    "ko": {
        "kind_payment": "카드 결제",
        "kind_transfer": "이체",
        "kind_login": "로그인",
        "kind_certificate_reissue": "인증서 재발급",
        "kind_payee_added": "수취인 등록",
        "kind_password_reset": "비밀번호 재설정",
        "decision_allow": "허용",
        "decision_challenge": "추가 인증",
        "decision_review": "검토",
        "decision_block": "차단",
        "label_fraud": "사기",
        "label_genuine": "정상",
        "none": "—",
        "note_label": "메모 (선택)",
        "mark_fraud": "사기",
        "mark_genuine": "정상",
        "verdict_label": "판정",
    },
    "en": {
        "kind_payment": "Card payment",
        "kind_transfer": "Transfer",
        "kind_login": "Login",
        "kind_certificate_reissue": "Certificate reissue",
        "kind_payee_added": "Payee added",
        "kind_password_reset": "Password reset",
        "decision_allow": "Allow",
        "decision_challenge": "Challenge",
        "decision_review": "Review",
        "decision_block": "Block",
        "label_fraud": "Fraud",
        "label_genuine": "Genuine",
        "none": "—",
        "note_label": "Note (optional)",
        "mark_fraud": "Fraud",
        "mark_genuine": "Genuine",
        "verdict_label": "Verdict",
    },
}
