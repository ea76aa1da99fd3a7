"""Rules get a Chinese name; the out-of-the-box rules already in a database get theirs."""

from typing import Any

from django.db import migrations, models

# The Chinese names of patron.risk.detection.DEFAULT_RULES as they were when this migration was
# written (a migration must not read code that may change later).
NAMES_ZH = {
    "RET-RATE": "频繁退货",
    "RET-QUICK": "收货后速退（穿后即退）",
    "CXL-SHIP": "发货后取消",
    "CXL-RATE": "频繁取消订单",
    "REV-BURST": "一星差评集中出现",
    "REV-ABUSE": "辱骂或与商品无关的评价",
    "REV-NORECEIPT": "未收货即评价",
    "REV-DEVIATE": "评分远低于其他买家",
    "PAY-CB": "拒付（银行退单）",
    "PAY-DEFAULT": "先用后付逾期未还",
    "PAY-COD": "货到付款拒收",
    "ID-SHARED": "多个账户共用同一身份信息",
    "CPN-ABUSE": "新客券套利（薅羊毛）",
}


def name_default_rules(apps: Any, schema_editor: Any) -> None:
    rule = apps.get_model("risk", "RiskRule")
    for code, name_zh in NAMES_ZH.items():
        rule.objects.filter(code=code, name_zh="").update(name_zh=name_zh)


class Migration(migrations.Migration):
    dependencies = [
        ("risk", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="riskrule",
            name="name_zh",
            field=models.CharField(blank=True, help_text="Chinese name", max_length=120),
        ),
        migrations.AlterField(
            model_name="riskrule",
            name="name",
            field=models.CharField(help_text="English name", max_length=120),
        ),
        migrations.RunPython(name_default_rules, migrations.RunPython.noop),
    ]
