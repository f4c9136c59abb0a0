"""The console's texts in English and Chinese, and the choice of language (pure).

The language comes from the ``cs_console_lang`` cookie (the switch in the header) or else from the
browser's ``Accept-Language``; English when neither names a language we have.
"""

from __future__ import annotations

from collections.abc import Callable

from ai_customer_service.errors import (
    AUTH_DENIED,
    KB_TITLE_EXISTS,
    KB_VERSION_CONFLICT,
    REQ_CLOSE_RESOLUTION_REQUIRED,
    REQ_RESOLUTION_REQUIRED,
    TICKET_AGENT_NOT_ACTIVE,
    TICKET_ASSIGN_CONFLICT,
    TICKET_CLOSE_CONFLICT,
    TICKET_NOT_FOUND,
    TICKET_REOPEN_CONFLICT,
    TICKET_REPLY_CONFLICT,
    TICKET_RESOLVE_CONFLICT,
)

LANGUAGES = ("en", "zh")
LANG_COOKIE = "cs_console_lang"

# key: (English, Chinese)
TEXTS: dict[str, tuple[str, str]] = {
    "app": ("Agent console", "客服工作台"),
    "lang_switch": ("中文", "English"),
    "lang_switch_label": ("Switch language", "切换语言"),
    "nav_inbox": ("Inbox", "收件箱"),
    "nav_kb": ("Knowledge base", "知识库"),
    "nav_supervisor": ("Supervisor", "主管视图"),
    "nav_admin": ("Admin", "管理"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出登录"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "bad_credentials": ("Wrong user name or password.", "用户名或密码错误。"),
    "too_many_attempts": (
        "Too many failed sign-ins. Try again in a few minutes.",
        "登录失败次数过多，请几分钟后再试。",
    ),
    "csrf_failed": (
        "This form has expired or did not come from this console. Reload the page and try again.",
        "表单已过期或并非来自本工作台。请刷新页面后重试。",
    ),
    "tab_mine": ("Mine", "我的"),
    "tab_unassigned": ("Unassigned", "未分配"),
    "tab_all": ("All", "全部"),
    "filter": ("Filter", "筛选"),
    "any": ("Any", "全部"),
    "status": ("Status", "状态"),
    "priority": ("Priority", "优先级"),
    "channel": ("Channel", "渠道"),
    "customer": ("Customer", "客户"),
    "reason": ("Handoff reason", "转人工原因"),
    "waiting": ("Waiting", "等待时长"),
    "assignee": ("Assignee", "负责人"),
    "subject": ("Subject", "主题"),
    "nobody": ("Nobody", "无"),
    "no_tickets": ("Nothing waiting for a person.", "暂无等待人工处理的会话。"),
    "live_on": ("Live", "实时"),
    "live_off": ("Reconnecting…", "正在重连…"),
    "open_ticket": ("Open", "打开"),
    "page": ("Page", "第"),
    "previous": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "total": ("in all", "条"),
    "conversation": ("Conversation", "会话记录"),
    "customer_details": ("Customer details", "客户信息"),
    "ticket": ("Ticket", "工单"),
    "created": ("Created", "创建时间"),
    "session_status": ("Conversation state", "会话状态"),
    "user_id": ("User id", "用户 ID"),
    "platform": ("Platform", "平台"),
    "author_customer": ("Customer", "客户"),
    "author_bot": ("Bot", "机器人"),
    "author_agent": ("Agent", "客服"),
    "author_system": ("System", "系统"),
    "intent": ("Intent", "意图"),
    "confidence": ("Confidence", "置信度"),
    "citations": ("Citations", "引用"),
    "decision_reason": ("Decision", "决策原因"),
    "notes": ("Private notes", "内部备注"),
    "no_notes": ("No notes yet.", "暂无备注。"),
    "note": ("Private note", "内部备注"),
    "add_note": ("Add note", "添加备注"),
    "reply": ("Reply", "回复"),
    "send_reply": ("Send reply", "发送回复"),
    "assist": ("Suggested answer (agent assist)", "建议回复（智能辅助）"),
    "assist_none": (
        "The knowledge base has no answer for the last customer message.",
        "知识库中没有适合最后一条客户消息的答案。",
    ),
    "use_draft": ("Use as draft", "用作草稿"),
    "claim": ("Claim", "认领"),
    "assign": ("Assign", "分配"),
    "assign_to": ("Assign to", "分配给"),
    "resolve": ("Resolve", "解决"),
    "resolution": ("Resolution", "解决说明"),
    "close": ("Close", "关闭"),
    "reopen": ("Reopen", "重新打开"),
    "actions": ("Actions", "操作"),
    "no_actions": ("No action is possible in this state.", "当前状态下没有可执行的操作。"),
    "done": ("Done.", "已完成。"),
    "back_to_inbox": ("Back to inbox", "返回收件箱"),
    "kb_search": ("Search entries", "搜索条目"),
    "search": ("Search", "搜索"),
    "title": ("Title", "标题"),
    "answer": ("Answer", "答案"),
    "questions": ("Example questions (one a line)", "示例问题（每行一个）"),
    "tags": ("Tags (comma-separated)", "标签（逗号分隔）"),
    "save": ("Save", "保存"),
    "save_publish": ("Save and publish", "保存并发布"),
    "publish": ("Publish", "发布"),
    "edit": ("Edit", "编辑"),
    "new_entry": ("New entry", "新建条目"),
    "create": ("Create", "创建"),
    "try_question": ("Try a question", "试问一个问题"),
    "try_button": ("Ask the bot", "询问机器人"),
    "question": ("Question", "问题"),
    "bot_would": ("The bot would", "机器人将会"),
    "runner_up": ("Runner-up entries", "候选条目"),
    "kind_answer": ("answer", "直接回答"),
    "kind_clarify": ("ask to clarify", "请客户澄清"),
    "kind_handoff": ("hand off to a person", "转人工"),
    "read_only": (
        "Only supervisors and admins may edit the knowledge base.",
        "只有主管和管理员可以编辑知识库。",
    ),
    "period": ("Period", "时间范围"),
    "days_1": ("Last 24 hours", "最近 24 小时"),
    "days_7": ("Last 7 days", "最近 7 天"),
    "days_30": ("Last 30 days", "最近 30 天"),
    "days_all": ("All time", "全部时间"),
    "show": ("Show", "显示"),
    "tickets_by_status": ("Tickets by status", "各状态工单数"),
    "handoff_reasons": ("Handoff reasons", "转人工原因"),
    "times": ("Response times", "响应时间"),
    "to_assign": ("Time to assign", "分配用时"),
    "to_reply": ("Time to first reply", "首次回复用时"),
    "to_resolve": ("Time to resolve", "解决用时"),
    "csat": ("Customer satisfaction (CSAT)", "客户满意度 (CSAT)"),
    "ratings": ("ratings", "个评分"),
    "bot_answer_rate": ("Bot answer rate", "机器人直接回答率"),
    "bot_messages": ("bot replies", "条机器人回复"),
    "agents": ("Agents", "客服人员"),
    "name": ("Name", "名称"),
    "role": ("Role", "角色"),
    "available": ("Available", "在线"),
    "away": ("Away", "离开"),
    "capacity": ("Capacity", "容量"),
    "active_tickets": ("Active tickets", "处理中工单"),
    "set_available": ("Set available", "设为在线"),
    "set_away": ("Set away", "设为离开"),
    "dead_letters": ("Dead-letter events", "死信事件"),
    "no_dead_letters": ("No dead-letter events.", "没有死信事件。"),
    "event_type": ("Event", "事件"),
    "destination": ("Destination", "目标"),
    "attempts": ("Attempts", "尝试次数"),
    "last_error": ("Last error", "最近错误"),
    "replay": ("Replay", "重新投递"),
    "replay_all": ("Replay all", "全部重新投递"),
    "mean": ("mean", "平均"),
    "count": ("count", "数量"),
    "seconds": ("s", "秒"),
    "forbidden": ("You may not open this page.", "您无权访问此页面。"),
    "error": ("Something went wrong", "出错了"),
    # values shown as labels (the stored value stays the code)
    "st_open": ("open", "待处理"),
    "st_assigned": ("assigned", "已分配"),
    "st_processing": ("in progress", "处理中"),
    "st_resolved": ("resolved", "已解决"),
    "st_closed": ("closed", "已关闭"),
    "st_draft": ("draft", "草稿"),
    "st_published": ("published", "已发布"),
    "st_archived": ("archived", "已归档"),
    "rs_refund": ("refund", "退款"),
    "rs_account_security": ("account security", "账号安全"),
    "rs_complaint": ("complaint", "投诉"),
    "rs_human_request": ("asked for a person", "要求人工"),
    "rs_low_confidence": ("bot not confident", "机器人无把握"),
    "rs_sensitive": ("sensitive topic", "敏感话题"),
    "rs_manual": ("handed over by staff", "人工转交"),
}

# plain sentences for the errors an agent meets in the console, by CS_* code
ERROR_SENTENCES: dict[str, tuple[str, str]] = {
    TICKET_ASSIGN_CONFLICT: (
        "This ticket is already assigned, or cannot be assigned now.",
        "该工单已被分配，或当前无法分配。",
    ),
    TICKET_AGENT_NOT_ACTIVE: ("That agent is not active.", "该客服人员不可用。"),
    TICKET_RESOLVE_CONFLICT: (
        "This ticket cannot be resolved in its current state.",
        "该工单当前状态下无法解决。",
    ),
    TICKET_CLOSE_CONFLICT: ("Only a resolved ticket can be closed.", "只有已解决的工单才能关闭。"),
    TICKET_REOPEN_CONFLICT: (
        "This ticket cannot be reopened now (it is not resolved or closed, "
        "or the conversation already has an open ticket).",
        "该工单现在无法重新打开（未解决或未关闭，或该会话已有进行中的工单）。",
    ),
    TICKET_REPLY_CONFLICT: (
        "You can reply once the ticket is assigned and until it is resolved.",
        "工单分配后、解决前才能回复客户。",
    ),
    TICKET_NOT_FOUND: ("This ticket does not exist.", "该工单不存在。"),
    REQ_RESOLUTION_REQUIRED: ("Write a resolution first.", "请先填写解决说明。"),
    REQ_CLOSE_RESOLUTION_REQUIRED: ("Write a resolution first.", "请先填写解决说明。"),
    AUTH_DENIED: ("You are not allowed to do this.", "您无权执行此操作。"),
    KB_VERSION_CONFLICT: (
        "Someone else changed this entry meanwhile. Reload it and apply your change again.",
        "该条目已被他人修改。请刷新后重新修改。",
    ),
    KB_TITLE_EXISTS: ("An entry with this title already exists.", "已存在同名条目。"),
}


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """``cookie`` when it names a language we have; else the best match of ``Accept-Language``."""
    if cookie in LANGUAGES:
        return str(cookie)
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def translator(lang: str) -> Callable[[str], str]:
    index = 1 if lang == "zh" else 0

    def t(key: str) -> str:
        pair = TEXTS.get(key)
        return pair[index] if pair else key

    return t


def value_labeller(lang: str) -> Callable[[str, str], str]:
    """``label("st", "open")``: the label of a stored value, or the value itself when it has none."""
    index = 1 if lang == "zh" else 0

    def label(prefix: str, value: str) -> str:
        pair = TEXTS.get(f"{prefix}_{value}")
        return pair[index] if pair else value

    return label


def error_sentence(lang: str, code: str, fallback: str) -> str:
    pair = ERROR_SENTENCES.get(code)
    if pair is None:
        return fallback
    return pair[1 if lang == "zh" else 0]
