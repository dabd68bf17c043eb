"""Every word the report shows, in Korean and English: section titles, labels, the fixed
description of the protection system, how to report fraud, and the definitions of the
figures. The template and the charts take their text from here and nowhere else."""

from __future__ import annotations

from typing import Any

from haetae.catalog import Locale
from haetae.safety_report.period import Bucket, Period

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EN_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

EVENT_KINDS: dict[str, dict[Locale, str]] = {
    "payment": {"ko": "결제", "en": "Payments"},
    "transfer": {"ko": "이체", "en": "Transfers"},
    "login": {"ko": "로그인", "en": "Logins"},
    "certificate_reissue": {"ko": "인증서 재발급", "en": "Certificate reissues"},
    "payee_added": {"ko": "수취인 등록", "en": "Payees added"},
    "password_reset": {"ko": "비밀번호 재설정", "en": "Password resets"},
}
DECISIONS: dict[str, dict[Locale, str]] = {
    "allow": {"ko": "허용", "en": "Allowed"},
    "challenge": {"ko": "추가 인증", "en": "Step-up"},
    "review": {"ko": "검토 보류", "en": "Held for review"},
    "block": {"ko": "차단", "en": "Blocked"},
}
REPORT_KINDS: dict[str, dict[Locale, str]] = {
    "voice_phishing": {"ko": "보이스피싱", "en": "Voice phishing"},
    "smishing": {"ko": "스미싱", "en": "Smishing"},
    "messenger_impersonation": {"ko": "메신저 피싱(지인 사칭)", "en": "Messenger impersonation"},
    "account_takeover": {"ko": "계정 탈취", "en": "Account takeover"},
    "card_fraud": {"ko": "카드 부정사용", "en": "Card fraud"},
    "lost_card": {"ko": "카드 분실·도난", "en": "Lost or stolen card"},
    "other": {"ko": "기타", "en": "Other"},
}
ACTION_TYPES: dict[str, dict[Locale, str]] = {
    "payment_suspension": {"ko": "지급정지", "en": "Payment suspension"},
    "suspension_request": {
        "ko": "타 금융회사 지급정지 요청",
        "en": "Suspension asked of another bank",
    },
    "mule_list_entry": {"ko": "사기 계좌 등록", "en": "Fraud account listed"},
    "device_list_entry": {"ko": "사기 기기 등록", "en": "Fraud device listed"},
    "phone_list_entry": {"ko": "사기 전화번호 등록", "en": "Fraud phone number listed"},
    "transfer_hold": {"ko": "피해자 이체 보류", "en": "Victim's transfers held"},
    "card_block": {"ko": "카드 정지", "en": "Card blocked"},
    "certificate_revocation": {"ko": "인증서 폐기", "en": "Certificate revoked"},
}
ACTION_STATUSES: dict[str, dict[Locale, str]] = {
    "active": {"ko": "시행 중", "en": "in force"},
    "requested": {"ko": "요청함", "en": "requested"},
    "lifted": {"ko": "해제", "en": "lifted"},
    "failed": {"ko": "실패", "en": "failed"},
}
CHANNELS: dict[str, dict[Locale, str]] = {
    "inbox": {"ko": "앱 알림함", "en": "In-app inbox"},
    "push": {"ko": "푸시", "en": "Push"},
    "sms": {"ko": "문자(SMS)", "en": "SMS"},
    "email": {"ko": "이메일", "en": "E-mail"},
}
CATEGORIES: dict[str, dict[Locale, str]] = {
    "security": {"ko": "보안", "en": "Security"},
    "transactional": {"ko": "거래", "en": "Transactional"},
    "marketing": {"ko": "마케팅", "en": "Marketing"},
}

# The protection system in place: (stage, heading, points), after the three stages of the
# "financial safety report" banks publish (prevention, detection, response).
SYSTEM: dict[Locale, list[tuple[str, str, list[str]]]] = {
    "ko": [
        (
            "1단계",
            "예방",
            [
                "키인 결제의 카드 정보를 입력 즉시 검증하고 토큰으로 바꿉니다. 카드번호는 "
                "암호화해서만 보관하고 어디에도 그대로 남기지 않습니다.",
                "인증서 만료 전에 미리 안내하고, 갱신·재발급은 곧바로 알려 드립니다. "
                "본인이 하지 않은 재발급이면 바로 신고할 수 있습니다.",
                "보이스피싱이 의심되는 이체는 경고와 함께 잠시 늦추어, 고객이 확인하고 "
                "취소할 시간을 드립니다.",
                "보안 알림은 수신 설정과 관계없이 앱 알림함에 항상 남깁니다.",
            ],
        ),
        (
            "2단계",
            "탐지",
            [
                "모든 결제, 이체, 로그인, 인증서 재발급을 실시간으로 점검합니다. 거래 "
                "특성, 분석가가 만든 규칙, 학습된 모델이 함께 판단합니다.",
                "위험에 따라 허용, 추가 인증, 검토 보류, 차단 중 하나로 결정하고 그 "
                "이유를 남깁니다.",
                "분석가가 보류된 거래를 검토해 사기 여부를 표시하면, 그 결과로 모델을 "
                "다시 학습합니다.",
            ],
        ),
        (
            "3단계",
            "대응",
            [
                "사기·피싱 신고는 24시간 받습니다(앱, 웹, 고객센터).",
                "신고를 받는 즉시 보호 조치를 합니다: 사기 계좌 지급정지, 카드 정지, "
                "피해자 이체 보류, 사기 계좌·기기·전화번호 등록.",
                "사기 계좌는 제휴 금융회사와 공유해 다른 곳에서의 피해도 막습니다.",
                "피해구제 절차에 따라 사건이 끝날 때까지 추적하고, 단계마다 고객께 알려 드립니다.",
            ],
        ),
    ],
    "en": [
        (
            "Stage 1",
            "Prevention",
            [
                "Card details typed in for a payment are checked at once and replaced by a "
                "token. Card numbers are only ever kept encrypted and appear nowhere in clear.",
                "Customers are reminded before a certificate expires and told at once of "
                "every renewal or reissue; a reissue they did not make can be reported on the "
                "spot.",
                "A transfer that looks like voice phishing is delayed with a warning, giving "
                "the customer time to check and cancel it.",
                "Security notices always reach the in-app inbox, whatever the customer's "
                "channel choices.",
            ],
        ),
        (
            "Stage 2",
            "Detection",
            [
                "Every payment, transfer, login and certificate reissue is checked in real "
                "time by features of the transaction, analysts' rules and a trained model.",
                "Each is allowed, stepped up, held for review or blocked, and the reasons "
                "are kept.",
                "Analysts review held transactions and label them; the labels train the "
                "next model.",
            ],
        ),
        (
            "Stage 3",
            "Response",
            [
                "Fraud and phishing reports are taken 24 hours a day (app, web, call centre).",
                "Protective actions are taken the moment a report arrives: the receiving "
                "account's payments suspended, cards blocked, the victim's transfers held, "
                "the fraud accounts, devices and phone numbers listed.",
                "Fraud accounts are shared with affiliate institutions, to stop the same "
                "fraud elsewhere.",
                "Each case is followed through the damage-relief process to its end, with a "
                "notice to the customer at every step.",
            ],
        ),
    ],
}

_TEXT: dict[Locale, dict[str, str]] = {
    "ko": {
        "report": "금융안전보고서",
        "issuer": "해태뱅크",
        "period": "대상 기간",
        "generated": "작성 시각",
        "partial": "기간이 끝나지 않아 작성 시각까지의 기록으로 집계했습니다.",
        "timezone": "모든 시각은 한국 표준시(KST) 기준입니다.",
        "toc": "목차",
        "s_system": "해태 금융안전시스템 소개",
        "s_system_intro": "해태뱅크는 고객의 자산을 지키기 위해 예방, 탐지, 대응의 3단계로 "
        "이용자 보호 시스템을 운영합니다.",
        "s_glance": "한눈에 보기",
        "s_trends": "금융사기 동향",
        "s_trends_reports": "유형별 사기·피싱 신고 추이",
        "s_trends_detected": "거래 유형별 탐지 추이",
        "s_defence": "탐지와 차단",
        "s_defence_intro": "이상 거래 탐지 시스템이 점검한 거래와 그 결과, 그리고 막아 낸 "
        "금액입니다.",
        "s_prevented": "예방 금액",
        "s_response": "신속 접수 및 후속 조치",
        "s_response_intro": "접수한 신고와, 접수부터 첫 보호 조치까지 걸린 시간입니다.",
        "s_actions": "보호 조치",
        "s_notices": "고객 알림",
        "s_rules": "가장 많이 잡아낸 규칙",
        "s_howto": "피해 신고 방법",
        "s_definitions": "용어와 산출 기준",
        "events_scored": "점검한 거래",
        "detected": "탐지",
        "blocked": "차단",
        "confirmed_fraud": "사기 확인",
        "money_prevented": "예방 금액",
        "reports_received": "접수한 신고",
        "median_first_action": "첫 조치까지(중앙값)",
        "notices_sent": "보낸 알림",
        "kind": "유형",
        "total": "합계",
        "count": "건수",
        "amount": "금액",
        "month": "월",
        "day": "일",
        "decision": "결정",
        "blocked_amount": "차단 금액",
        "abandoned": "추가 인증 미완료 결제",
        "abandoned_amount": "추가 인증 미완료 금액",
        "received": "접수",
        "acted": "조치",
        "awaiting": "조치 대기",
        "median": "중앙값",
        "p90": "90번째 백분위",
        "amount_reported": "신고 피해액",
        "refunded": "환급액",
        "action": "보호 조치",
        "status": "상태",
        "channel": "채널",
        "deliveries": "발송 건수",
        "reached": "전달",
        "failed": "실패",
        "suppressed": "발송 안 함",
        "in_progress": "처리 중",
        "category": "알림 종류",
        "notices": "알림",
        "rule": "규칙",
        "caught": "탐지 건수",
        "reviewed": "검토 보류",
        "challenged": "추가 인증",
        "no_data": "이 기간에는 기록이 없습니다.",
        "chart_reports": "월별 신고 건수(유형별)",
        "chart_detected": "탐지 건수(거래 유형별)",
        "chart_prevented": "예방 금액(백만 원)",
        "chart_response": "첫 조치까지 걸린 시간(분)",
        "chart_channels": "채널별 알림",
        "chart_rules": "규칙별 탐지 건수",
        "unit_million_won": "백만 원",
        "unit_minutes": "분",
        "other_currency": "다른 통화 거래 {count}건은 건수에만 포함하고 금액에서는 뺐습니다.",
        "howto_intro": "금융사기 피해가 의심되면 바로 신고해 주세요. 신고를 받는 즉시 "
        "지급정지 등 보호 조치를 합니다.",
        "howto_phone": "해태뱅크 고객센터 {phone} (24시간)",
        "howto_web": "앱·웹 신고: {url}",
        "howto_police": "경찰청 112, 금융감독원 1332",
        "howto_tip": "검찰·경찰·금융감독원이라며 돈을 옮기라는 전화, 대출을 해 주겠다며 먼저 "
        "돈을 보내라는 요구는 모두 사기입니다. 전화를 끊고 확인해 주세요.",
    },
    "en": {
        "report": "Financial Safety Report",
        "issuer": "Haetae Bank",
        "period": "Period",
        "generated": "Generated",
        "partial": "The period has not ended: the figures cover the records up to the time "
        "of generation.",
        "timezone": "All times are Korea Standard Time (KST).",
        "toc": "Contents",
        "s_system": "The Haetae financial safety system",
        "s_system_intro": "Haetae Bank protects its customers' money with a system of three "
        "stages: prevention, detection and response.",
        "s_glance": "At a glance",
        "s_trends": "Fraud trends",
        "s_trends_reports": "Fraud and phishing reports by kind",
        "s_trends_detected": "Detections by kind of transaction",
        "s_defence": "Detection and prevention",
        "s_defence_intro": "The transactions the fraud detection system checked, what it "
        "decided, and the money it kept from fraudsters.",
        "s_prevented": "Money prevented",
        "s_response": "Reports received and follow-up",
        "s_response_intro": "The reports received, and the time from receiving each to the "
        "first protective action.",
        "s_actions": "Protective actions",
        "s_notices": "Notices to customers",
        "s_rules": "The rules that caught most",
        "s_howto": "How to report fraud",
        "s_definitions": "Definitions and methods",
        "events_scored": "Transactions checked",
        "detected": "Detected",
        "blocked": "Blocked",
        "confirmed_fraud": "Confirmed fraud",
        "money_prevented": "Money prevented",
        "reports_received": "Reports received",
        "median_first_action": "To first action (median)",
        "notices_sent": "Notices sent",
        "kind": "Kind",
        "total": "Total",
        "count": "Count",
        "amount": "Amount",
        "month": "Month",
        "day": "Day",
        "decision": "Decision",
        "blocked_amount": "Blocked amount",
        "abandoned": "Payments not completed after step-up",
        "abandoned_amount": "Amount not completed after step-up",
        "received": "Received",
        "acted": "Acted on",
        "awaiting": "Awaiting action",
        "median": "Median",
        "p90": "90th percentile",
        "amount_reported": "Amount reported",
        "refunded": "Refunded",
        "action": "Protective action",
        "status": "Status",
        "channel": "Channel",
        "deliveries": "Deliveries",
        "reached": "Delivered",
        "failed": "Failed",
        "suppressed": "Not sent",
        "in_progress": "In progress",
        "category": "Kind of notice",
        "notices": "Notices",
        "rule": "Rule",
        "caught": "Caught",
        "reviewed": "Held for review",
        "challenged": "Stepped up",
        "no_data": "Nothing was recorded in this period.",
        "chart_reports": "Reports per month, by kind",
        "chart_detected": "Detections, by kind of transaction",
        "chart_prevented": "Money prevented (KRW million)",
        "chart_response": "Time to first action (minutes)",
        "chart_channels": "Notices by channel",
        "chart_rules": "Decisions caught, by rule",
        "unit_million_won": "KRW million",
        "unit_minutes": "min",
        "other_currency": "{count} transaction(s) in other currencies are counted but left "
        "out of the amounts.",
        "howto_intro": "If you suspect fraud, report it at once: protective actions such as "
        "a payment suspension are taken the moment a report arrives.",
        "howto_phone": "Haetae Bank call centre {phone} (24 hours)",
        "howto_web": "In the app or on the web: {url}",
        "howto_police": "Police 112, Financial Supervisory Service 1332",
        "howto_tip": "A caller who says they are a prosecutor, the police or the Financial "
        "Supervisory Service and asks you to move money, or who offers a loan if you send "
        "money first, is a fraudster. Hang up and check.",
    },
}

DEFINITIONS: dict[Locale, list[tuple[str, str]]] = {
    "ko": [
        (
            "점검한 거래",
            "기간 중 이상 거래 탐지 엔진이 결정을 내린 모든 거래(결제, 이체, 로그인, 인증서 "
            "재발급, 수취인 등록, 비밀번호 재설정)의 수입니다. 결정 시각 기준입니다.",
        ),
        ("탐지", "결정이 허용이 아닌 거래(추가 인증, 검토 보류, 차단)의 수입니다."),
        ("차단", "결정이 차단인 거래의 수입니다."),
        ("사기 확인", "분석가가 검토 후 사기로 표시한 거래의 수입니다."),
        (
            "예방 금액",
            "(가) 차단된 거래의 금액과 (나) 엔진이 추가 인증을 요구한 결제 중 인증에 "
            "실패했거나 기한 안에 인증하지 않아 이루어지지 않은 결제의 금액을 더한 "
            "값입니다. 추가 인증을 요구한 이체·로그인은 인증 결과를 은행의 다른 시스템이 "
            "처리하므로 넣지 않았습니다. 보고서 통화(원) 거래만 더합니다.",
        ),
        (
            "첫 조치까지 걸린 시간",
            "신고를 접수한 시각부터 첫 보호 조치를 한 시각까지의 시간입니다. 중앙값과 "
            "90번째 백분위는 최근접 순위 방식으로, 신고의 절반(90%)이 그 시간 안에 조치를 "
            "받았다는 뜻입니다. 아직 조치가 없는 신고는 '조치 대기'로 따로 셉니다.",
        ),
        (
            "보낸 알림",
            "기간 중 만든 고객 알림의 수입니다. 채널별 표는 알림 한 건이 채널마다 보낸 "
            "발송을 세며, '전달'은 발송 완료 또는 수신 확인 상태입니다.",
        ),
        (
            "규칙별 탐지",
            "탐지된 거래 중 해당 규칙이 걸린 거래의 수입니다(허용 규칙 제외). 한 거래에 "
            "규칙 여러 개가 걸리면 각 규칙에 모두 셉니다.",
        ),
        ("기간과 시각", "기간의 경계와 월·일 구분은 한국 표준시(Asia/Seoul) 기준입니다."),
    ],
    "en": [
        (
            "Transactions checked",
            "Every event the fraud detection engine decided in the period (payments, "
            "transfers, logins, certificate reissues, payees added, password resets), by the "
            "time of the decision.",
        ),
        ("Detected", "Decisions other than allow: step-up, held for review, or blocked."),
        ("Blocked", "Decisions to block."),
        ("Confirmed fraud", "Decisions an analyst reviewed and labelled fraud."),
        (
            "Money prevented",
            "The amounts of (a) blocked transactions plus (b) payments the engine stepped up "
            "whose step-up was failed or not completed in time, so that the payment never "
            "went through. Stepped-up transfers and logins are not counted: their step-up is "
            "handled by the bank's other systems. Only transactions in the report currency "
            "(KRW) are added up.",
        ),
        (
            "Time to first action",
            "From receiving a report to the first protective action taken for it. The median "
            "and 90th percentile are nearest-rank: half (90%) of the reports were acted on "
            "within that time. Reports with no action yet are counted apart, as awaiting "
            "action.",
        ),
        (
            "Notices sent",
            "Customer notices created in the period. The channel table counts each notice's "
            "delivery on each channel; delivered means handed over or confirmed received.",
        ),
        (
            "Decisions caught by a rule",
            "Detected decisions that the rule hit (allow rules aside). A decision hit by "
            "several rules counts for each of them.",
        ),
        (
            "Period and times",
            "The period's bounds and its months and days are Korea Standard Time (Asia/Seoul).",
        ),
    ],
}


def text(locale: Locale) -> dict[str, str]:
    return _TEXT[locale]


def label(table: dict[str, dict[Locale, str]], key: str, locale: Locale) -> str:
    """A code's name, or the code itself when it is not known (a kind added later)."""
    names = table.get(key)
    return names[locale] if names else key


def title(period: Period, locale: Locale) -> str:
    year = period.year
    if locale == "ko":
        if period.kind == "quarter":
            return f"{year}년 {period.text[-1]}분기 금융안전보고서"
        if period.kind == "month":
            return f"{year}년 {period.start.month}월 금융안전보고서"
        return f"{year} 금융안전보고서"
    if period.kind == "quarter":
        return f"Financial Safety Report, Q{period.text[-1]} {year}"
    if period.kind == "month":
        return f"Financial Safety Report, {_EN_MONTH_NAMES[period.start.month - 1]} {year}"
    return f"Financial Safety Report {year}"


def bucket_label(bucket: Bucket, locale: Locale) -> str:
    """``3월`` / ``Mar`` for a month, ``15`` for a day."""
    if bucket.day is not None:
        return str(bucket.day)
    return f"{bucket.month}월" if locale == "ko" else _EN_MONTHS[bucket.month - 1]


def duration(seconds: float | None, locale: Locale) -> str:
    """``1시간 05분`` / ``1 h 05 min``; ``3분 20초`` / ``3 min 20 s``; ``-`` for none."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if locale == "ko":
        if hours:
            return f"{hours:,}시간 {minutes:02d}분"
        return f"{minutes}분 {secs:02d}초" if minutes else f"{secs}초"
    if hours:
        return f"{hours:,} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def context(locale: Locale) -> dict[str, Any]:
    """The tables the template looks names up in."""
    return {
        "t": _TEXT[locale],
        "system": SYSTEM[locale],
        "definitions": DEFINITIONS[locale],
    }
